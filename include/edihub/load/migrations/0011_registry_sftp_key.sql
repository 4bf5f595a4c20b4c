-- The registry's seventh document (formats/registry/v1, sftp_key): the public keys allowed to
-- log in to each partner's SFTP account, replaced whole by each snapshot like the others.
-- `edihub sftp sshd-config` writes the SFTP server's configuration from it.
CREATE TABLE edi.registry_sftp_key (
    file_id      bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender       text    NOT NULL,
    record_no    integer NOT NULL,
    sftp_account text    NOT NULL,
    public_key   text    NOT NULL,
    added_on     date    NOT NULL,
    expires_on   date,
    PRIMARY KEY (sftp_account, public_key),
    CHECK (expires_on IS NULL OR expires_on > added_on)
);
