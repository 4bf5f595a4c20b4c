-- Claim statements (décomptes) and their fan-out: adjudicated lines, statements per insured and
-- processing day, their delivery by e-mail or paper, and the per-insurer export files.
-- Amounts are in cents, signed on statement lines (a reversal is negative); processing days are
-- dates in Monaco local time (Europe/Monaco), given by the hub, never now() in SQL.

-- Reimbursement rates: a copy of include/edihub/reference/reimbursement_rates.csv, refreshed
-- from it before each adjudication, so that the SQL which prices thousands of lines at once
-- joins the rate in force on each date of care. A rate row is never edited: a change is a new
-- row with its own valid_from.
CREATE TABLE edi.reimbursement_rate (
    claim_kind   text         NOT NULL CHECK (claim_kind IN ('fse_act', 'pharmacy_line')),
    category     text         NOT NULL,   -- pharmacy reimbursement category; '*' for FSE acts
    exemption    boolean      NOT NULL,   -- the rate with a ticket-modérateur exemption in force
    valid_from   date         NOT NULL,
    valid_to     date,                    -- exclusive; NULL: still in force
    rate_percent numeric(5,2) NOT NULL CHECK (rate_percent BETWEEN 0 AND 100),
    source       text         NOT NULL,
    assumed      boolean      NOT NULL,   -- no source confirms it for Monaco (domain.md §6)
    PRIMARY KEY (claim_kind, category, exemption, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- One adjudicated act of a care sheet or line of a pharmacy invoice. A re-adjudication (an
-- exemption that reaches the hub after the care was priced) adds a new version and points the
-- old one to it; the statements then carry a reversal of the old and the new line.
CREATE TABLE edi.claim_line (
    claim_line_id       bigserial    PRIMARY KEY,
    source_kind         text         NOT NULL CHECK (source_kind IN ('fse_act', 'pharmacy_line')),
    source_file_id      bigint       NOT NULL REFERENCES edi.inbound_file (id),
    source_sender       text         NOT NULL,
    source_record_no    integer      NOT NULL,   -- the sheet's or invoice's record in its file
    source_record_id    text         NOT NULL,   -- sheet id or invoice number
    source_line_no      integer      NOT NULL,   -- the act's or line's number in its record
    registration_number text         NOT NULL,
    beneficiary_rank    integer      NOT NULL,
    care_date           date         NOT NULL,   -- date of care or of dispensing
    practitioner_id     text         NOT NULL,   -- who treated or dispensed
    prescriber_id       text,
    prescription_ref    text,
    service_code        text         NOT NULL,   -- act code or CIP13
    category            text         NOT NULL,   -- reimbursement category ('*' for acts)
    quantity            integer      NOT NULL,
    billed              bigint       NOT NULL,   -- amount spent
    base                bigint       NOT NULL,   -- reimbursement base
    rate_percent        numeric(5,2) NOT NULL,
    reimbursed          bigint       NOT NULL,   -- by the mandatory scheme
    patient_share       bigint       NOT NULL,   -- ticket modérateur and overrun
    exemption_id        text,                    -- the exemption request in force, if any
    rate_valid_from     date         NOT NULL,   -- the rate row applied
    processed_on        date         NOT NULL,
    superseded_by       bigint       REFERENCES edi.claim_line (claim_line_id),
    CHECK (reimbursed + patient_share = billed)
);
CREATE UNIQUE INDEX claim_line_current
    ON edi.claim_line (source_kind, source_sender, source_record_id, source_line_no)
    WHERE superseded_by IS NULL;
CREATE INDEX claim_line_beneficiary
    ON edi.claim_line (registration_number, beneficiary_rank, care_date);
CREATE INDEX claim_line_file ON edi.claim_line (source_file_id);

-- A statement: what was reimbursed to one insured (and their beneficiaries) on one processing
-- day. Addressee, channel and insurer copy are decided at issue and kept: a statement is a
-- document, later registry changes do not rewrite it.
CREATE TABLE edi.statement (
    statement_id          bigserial PRIMARY KEY,
    statement_number      text      NOT NULL UNIQUE,
    registration_number   text      NOT NULL,
    issued_on             date      NOT NULL,
    payment_date          date      NOT NULL,
    last_name             text,
    first_name            text,
    postal_address        text,
    email                 text,                  -- set only when the channel is e-mail
    channel               text      NOT NULL CHECK (channel IN ('email', 'paper')),
    insurer_id            text,                  -- copy to this insurer; NULL: no copy
    insurer_member_number text,
    line_count            integer   NOT NULL,
    total_billed          bigint    NOT NULL,
    total_reimbursed      bigint    NOT NULL,
    total_patient_share   bigint    NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (registration_number, issued_on),
    CHECK (total_reimbursed + total_patient_share = total_billed),
    CHECK (channel = 'paper' OR email IS NOT NULL),
    CHECK ((insurer_id IS NULL) = (insurer_member_number IS NULL))
);
CREATE INDEX statement_issued ON edi.statement (issued_on);
CREATE INDEX statement_insurer ON edi.statement (insurer_id, issued_on);

-- kind: 'original' (a line priced for the first time), 'reversal' (cancels a line of an
-- earlier statement: amounts negated; X12 835 claim status 22) or 'replacement' (the line as
-- re-priced). reversed_statement_id/line_no: the earlier statement's line a reversal cancels or
-- a replacement replaces.
CREATE TABLE edi.statement_line (
    statement_id          bigint  NOT NULL REFERENCES edi.statement (statement_id),
    line_no               integer NOT NULL,
    claim_line_id         bigint  NOT NULL REFERENCES edi.claim_line (claim_line_id),
    kind                  text    NOT NULL CHECK (kind IN ('original', 'reversal', 'replacement')),
    reversed_statement_id bigint,
    reversed_line_no      integer,
    billed                bigint  NOT NULL,
    reimbursed            bigint  NOT NULL,
    patient_share         bigint  NOT NULL,
    PRIMARY KEY (statement_id, line_no),
    FOREIGN KEY (reversed_statement_id, reversed_line_no)
        REFERENCES edi.statement_line (statement_id, line_no),
    UNIQUE (claim_line_id, kind),
    CHECK (reimbursed + patient_share = billed),
    CHECK ((kind = 'original') = (reversed_statement_id IS NULL))
);

-- The processing days whose statements were issued. A day is issued once, after it is over
-- (or when an operator closes it early); lines priced later go on the next day's statements.
CREATE TABLE edi.statement_day (
    issued_on  date        PRIMARY KEY,
    statements integer     NOT NULL,
    lines      integer     NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now()
);

-- How each statement reaches its insured. An e-mail is retried with backoff; one that bounces
-- or fails for good is reported and falls back to paper (channel becomes 'paper', the error
-- kept), so that no statement is silently dropped.
CREATE TABLE edi.statement_delivery (
    statement_id    bigint      PRIMARY KEY REFERENCES edi.statement (statement_id),
    channel         text        NOT NULL CHECK (channel IN ('email', 'paper')),
    state           text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sent', 'printed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    fell_back_at    timestamptz,              -- when an e-mail gave up and went to paper
    message_id      text,
    delivered_at    timestamptz,
    print_day       date                      -- the print batch that carried it
);
CREATE INDEX statement_delivery_pending ON edi.statement_delivery (channel, next_attempt_at)
    WHERE state = 'pending';

-- One print batch per day for the mail room.
CREATE TABLE edi.print_batch (
    print_day       date        PRIMARY KEY,
    path            text        NOT NULL,
    sha256          char(64)    NOT NULL,
    statement_count integer     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Per-insurer export files. A file's content is decided once, when it is planned (its lines in
-- edi.export_line, its sequence number, its format): publishing, and any rerun or backfill,
-- renders it from that record, so the bytes, the number and the checksum never change.
CREATE TABLE edi.export_file (
    export_id           bigserial   PRIMARY KEY,
    insurer_id          text        NOT NULL,
    export_day          date        NOT NULL,    -- carries the statements issued up to this day
    sequence            integer     NOT NULL CHECK (sequence > 0),
    format              text        NOT NULL CHECK (format IN ('csv', 'xml', 'parquet')),
    sftp_account        text        NOT NULL,
    file_name           text        NOT NULL,
    row_count           integer     NOT NULL,
    total_billed        bigint      NOT NULL,
    total_reimbursed    bigint      NOT NULL,
    total_patient_share bigint      NOT NULL,
    state               text        NOT NULL DEFAULT 'planned'
        CHECK (state IN ('planned', 'published')),
    sha256              char(64),
    size_bytes          bigint,
    planned_at          timestamptz NOT NULL DEFAULT now(),
    published_at        timestamptz,
    attempts            integer     NOT NULL DEFAULT 0,
    last_error          text,
    last_attempt_at     timestamptz,
    UNIQUE (insurer_id, export_day),
    UNIQUE (insurer_id, sequence),
    CHECK (total_reimbursed + total_patient_share = total_billed)
);

CREATE TABLE edi.export_line (
    export_id    bigint  NOT NULL REFERENCES edi.export_file (export_id),
    line_no      integer NOT NULL,
    insurer_id   text    NOT NULL,
    statement_id bigint  NOT NULL,
    statement_line_no integer NOT NULL,
    PRIMARY KEY (export_id, line_no),
    FOREIGN KEY (statement_id, statement_line_no)
        REFERENCES edi.statement_line (statement_id, line_no),
    UNIQUE (insurer_id, statement_id, statement_line_no)   -- a line goes to an insurer once
);
