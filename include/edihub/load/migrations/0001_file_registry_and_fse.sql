-- The file registry, the reference registry the FSE contract needs, and the FSE tables.
CREATE SCHEMA IF NOT EXISTS edi;

-- Every inbound file the hub has touched, one row per receipt (a resent file is a new row).
CREATE TABLE edi.inbound_file (
    id               bigserial PRIMARY KEY,
    feed             text        NOT NULL,
    sender           text        NOT NULL,     -- the SFTP account that delivered the file
    remote_name      text        NOT NULL,     -- as listed (may be hostile: shown, never used as a path)
    remote_path      text        NOT NULL,     -- for people: undecodable bytes shown as \xNN
    remote_path_raw  bytea       NOT NULL,     -- the exact bytes, to move the file on the server
    sha256           char(64),
    size_bytes       bigint      NOT NULL,
    remote_mtime     timestamptz,
    batch_number     text,
    format_version   text,
    state            text        NOT NULL DEFAULT 'received'
        CHECK (state IN ('received', 'loaded', 'loaded_with_errors', 'rejected',
                         'quarantined', 'duplicate')),
    reason_code      text,
    reason           text,
    records_total    integer,
    records_loaded   integer,
    records_rejected integer,
    duplicate_of     bigint REFERENCES edi.inbound_file (id),
    received_at      timestamptz NOT NULL DEFAULT now(),
    decided_at       timestamptz,              -- the commit that gave the file its final state
    archive_path     text,
    archived_at      timestamptz,
    ack_path         text,
    acked_at         timestamptz
);
-- Exactly once: the same bytes, or the same batch of the same sender, load at most once.
-- Failed attempts do not count (a corrected file may reuse its batch number).
CREATE UNIQUE INDEX inbound_file_loaded_sha256 ON edi.inbound_file (sha256)
    WHERE state IN ('loaded', 'loaded_with_errors');
CREATE UNIQUE INDEX inbound_file_loaded_batch ON edi.inbound_file (feed, sender, batch_number)
    WHERE state IN ('loaded', 'loaded_with_errors');
-- A file in flight (received, not yet archived) is tracked once per remote path and content.
CREATE UNIQUE INDEX inbound_file_in_flight ON edi.inbound_file (remote_path_raw, sha256)
    WHERE archived_at IS NULL;
CREATE INDEX inbound_file_sender ON edi.inbound_file (sender, received_at);

-- What was wrong with a file or its records: the acknowledgment is built from these rows.
CREATE TABLE edi.file_error (
    file_id    bigint  NOT NULL REFERENCES edi.inbound_file (id),
    seq        integer NOT NULL,
    level      text    NOT NULL CHECK (level IN ('file', 'record')),
    record_no  integer,
    record_id  text,
    field      text,
    rule       text    NOT NULL,
    value      text,
    message    text    NOT NULL,
    PRIMARY KEY (file_id, seq)
);

-- Minimal reference registry (replaced whole by each registry snapshot).
CREATE TABLE edi.registry_practitioner (
    practitioner_id text PRIMARY KEY,
    kind            text NOT NULL,
    name            text NOT NULL
);
CREATE TABLE edi.registry_beneficiary (
    registration_number text    NOT NULL,
    beneficiary_rank    integer NOT NULL,
    beneficiary_key     text GENERATED ALWAYS AS (registration_number || '/' || beneficiary_rank) STORED,
    PRIMARY KEY (registration_number, beneficiary_rank),
    UNIQUE (beneficiary_key)
);

-- FSE v1 care sheets and their acts. Amounts are integer cents.
CREATE TABLE edi.fse_care_sheet (
    sheet_id            text    PRIMARY KEY,
    file_id             bigint  NOT NULL REFERENCES edi.inbound_file (id),
    record_no           integer NOT NULL,
    practitioner_id     text    NOT NULL,
    registration_number text    NOT NULL,
    beneficiary_rank    integer NOT NULL,
    fse_code            text    NOT NULL,
    care_date           date    NOT NULL,
    total               bigint  NOT NULL
);
CREATE INDEX fse_care_sheet_file ON edi.fse_care_sheet (file_id);

CREATE TABLE edi.fse_act (
    sheet_id  text    NOT NULL REFERENCES edi.fse_care_sheet (sheet_id),
    child_no  integer NOT NULL,
    file_id   bigint  NOT NULL REFERENCES edi.inbound_file (id),
    act_code  text    NOT NULL,
    quantity  integer NOT NULL,
    unit_fee  bigint  NOT NULL,
    amount    bigint  NOT NULL,
    PRIMARY KEY (sheet_id, child_no)
);
