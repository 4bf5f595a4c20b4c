-- The registry feed (formats/registry/v1): one table per snapshot document, replaced whole by
-- each snapshot; which snapshot is current; and the history of every registry row.
-- Replaces the minimal registry of 0001, which was loaded by hand.
DROP TABLE edi.registry_practitioner;
DROP TABLE edi.registry_beneficiary;

CREATE TABLE edi.registry_insured (
    file_id                   bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender                    text    NOT NULL,
    record_no                 integer NOT NULL,
    registration_number       text    NOT NULL,
    beneficiary_rank          integer NOT NULL,
    beneficiary_key           text GENERATED ALWAYS AS (registration_number || '/' || beneficiary_rank) STORED,
    last_name                 text    NOT NULL,
    first_name                text    NOT NULL,
    postal_address            text,
    email                     text,
    teleservice_subscribed_on date,
    email_validated           boolean NOT NULL,
    dematerialisation         boolean NOT NULL,
    insurer_id                text,
    insurer_member_number     text,
    insurer_consent           boolean NOT NULL,
    PRIMARY KEY (registration_number, beneficiary_rank),
    UNIQUE (beneficiary_key)
);

CREATE TABLE edi.registry_card (
    file_id             bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender              text    NOT NULL,
    record_no           integer NOT NULL,
    registration_number text    NOT NULL,
    beneficiary_rank    integer NOT NULL,
    fse_code            text    NOT NULL,
    card_key            text GENERATED ALWAYS AS
        (registration_number || '/' || beneficiary_rank || '/' || fse_code) STORED,
    valid_from          date    NOT NULL,
    valid_to            date,
    PRIMARY KEY (registration_number, beneficiary_rank, fse_code)
);
CREATE INDEX registry_card_key ON edi.registry_card (card_key);

CREATE TABLE edi.registry_insurer (
    file_id              bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender               text    NOT NULL,
    record_no            integer NOT NULL,
    insurer_id           text    PRIMARY KEY,
    name                 text    NOT NULL,
    convention_signed_on date,
    status               text    NOT NULL,
    sftp_account         text    NOT NULL,
    export_format        text    NOT NULL,
    export_time          text    NOT NULL
);

CREATE TABLE edi.registry_practitioner (
    file_id         bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender          text    NOT NULL,
    record_no       integer NOT NULL,
    practitioner_id text    PRIMARY KEY,
    kind            text    NOT NULL,
    specialty       text,
    name            text    NOT NULL,
    fse_start_date  date
);

CREATE TABLE edi.registry_pharmacy (
    file_id                     bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender                      text    NOT NULL,
    record_no                   integer NOT NULL,
    pharmacy_id                 text    PRIMARY KEY,
    name                        text    NOT NULL,
    teletransmission_start_date date
);

CREATE TABLE edi.registry_employer (
    file_id                   bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender                    text    NOT NULL,
    record_no                 integer NOT NULL,
    employer_id               text    PRIMARY KEY,
    name                      text    NOT NULL,
    kind                      text    NOT NULL,
    size                      integer NOT NULL,
    declaration_channel       text    NOT NULL,
    teleservice_subscribed_on date
);

-- The snapshot each document was last replaced by (one row per loaded snapshot).
CREATE TABLE edi.registry_snapshot (
    document      text        NOT NULL,
    snapshot_date date        NOT NULL,
    file_id       bigint      NOT NULL REFERENCES edi.inbound_file (id),
    row_count     integer     NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document, snapshot_date)
);

-- Every version of every registry row: valid from the snapshot that brought it, until the
-- snapshot that changed or dropped it (exclusive). A row's key is its snapshot key columns
-- joined by '/'; row is the row's columns, without the load's bookkeeping.
CREATE TABLE edi.registry_history (
    document   text  NOT NULL,
    key        text  NOT NULL,
    valid_from date  NOT NULL,
    valid_to   date,
    row        jsonb NOT NULL,
    file_id    bigint NOT NULL REFERENCES edi.inbound_file (id),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX registry_history_current ON edi.registry_history (document, key)
    WHERE valid_to IS NULL;
CREATE INDEX registry_history_key ON edi.registry_history (document, key, valid_from);

-- Which document of its feed version a file was (registry snapshots, FSE v2 messages).
ALTER TABLE edi.inbound_file ADD COLUMN document text;
