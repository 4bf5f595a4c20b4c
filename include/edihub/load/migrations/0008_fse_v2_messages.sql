-- FSE v2 (formats/fse/v2): besides care sheets, the messages practitioners' software sends.
-- Amounts are integer cents. Every message carries the card code it was made with, checked
-- against edi.registry_card on the message's date.

-- A dental care sheet may name the prior approval its acts fall under.
ALTER TABLE edi.fse_care_sheet ADD COLUMN prior_approval_id text;

CREATE TABLE edi.fse_work_stoppage (
    prescription_id     text    PRIMARY KEY,
    file_id             bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender              text    NOT NULL,
    record_no           integer NOT NULL,
    practitioner_id     text    NOT NULL,
    registration_number text    NOT NULL,
    beneficiary_rank    integer NOT NULL,
    fse_code            text    NOT NULL,
    prescribed_on       date    NOT NULL,
    kind                text    NOT NULL CHECK (kind IN ('initial', 'extension')),
    start_date          date    NOT NULL,
    end_date            date    NOT NULL,
    reason_category     text    NOT NULL,
    outings_allowed     boolean NOT NULL,
    CHECK (end_date >= start_date)
);
CREATE INDEX fse_work_stoppage_file ON edi.fse_work_stoppage (file_id);
CREATE INDEX fse_work_stoppage_insured ON edi.fse_work_stoppage (registration_number, start_date);

CREATE TABLE edi.fse_exemption_request (
    request_id          text    PRIMARY KEY,
    file_id             bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender              text    NOT NULL,
    record_no           integer NOT NULL,
    practitioner_id     text    NOT NULL,
    registration_number text    NOT NULL,
    beneficiary_rank    integer NOT NULL,
    fse_code            text    NOT NULL,
    requested_on        date    NOT NULL,
    ground              text    NOT NULL,
    condition_code      text,
    exempt_from         date    NOT NULL,
    exempt_until        date,
    CHECK (exempt_until IS NULL OR exempt_until >= exempt_from)
);
CREATE INDEX fse_exemption_request_file ON edi.fse_exemption_request (file_id);
CREATE INDEX fse_exemption_request_insured
    ON edi.fse_exemption_request (registration_number, beneficiary_rank);

CREATE TABLE edi.fse_invalidity_request (
    request_id          text    PRIMARY KEY,
    file_id             bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender              text    NOT NULL,
    record_no           integer NOT NULL,
    practitioner_id     text    NOT NULL,
    registration_number text    NOT NULL,
    beneficiary_rank    integer NOT NULL,
    fse_code            text    NOT NULL,
    requested_on        date    NOT NULL,
    stopped_work_since  date    NOT NULL,
    incapacity_rate     integer NOT NULL CHECK (incapacity_rate BETWEEN 0 AND 100),
    condition_code      text    NOT NULL
);
CREATE INDEX fse_invalidity_request_file ON edi.fse_invalidity_request (file_id);

-- One row per message: a request is submitted once and may later be withdrawn (another row).
-- approval_key is what care sheets and withdrawals look requests up by (a request id is the
-- dentist's own, so it is qualified by the practitioner); message_key tells a resent message.
CREATE TABLE edi.fse_prior_approval (
    request_id          text    NOT NULL,
    status              text    NOT NULL CHECK (status IN ('submitted', 'withdrawn')),
    file_id             bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender              text    NOT NULL,
    record_no           integer NOT NULL,
    practitioner_id     text    NOT NULL,
    approval_key        text GENERATED ALWAYS AS (practitioner_id || '/' || request_id) STORED,
    message_key         text GENERATED ALWAYS AS
        (practitioner_id || '/' || request_id || '/' || status) STORED,
    registration_number text    NOT NULL,
    beneficiary_rank    integer NOT NULL,
    fse_code            text    NOT NULL,
    requested_on        date    NOT NULL,
    planned_start       date    NOT NULL,
    estimated_total     bigint  NOT NULL,
    PRIMARY KEY (practitioner_id, request_id, status)
);
CREATE INDEX fse_prior_approval_key ON edi.fse_prior_approval (approval_key, status);
CREATE INDEX fse_prior_approval_file ON edi.fse_prior_approval (file_id);

CREATE TABLE edi.fse_prior_approval_act (
    request_id text    NOT NULL,
    child_no   integer NOT NULL,
    file_id    bigint  NOT NULL REFERENCES edi.inbound_file (id),
    sender     text    NOT NULL,
    act_code   text    NOT NULL,
    quantity   integer NOT NULL,
    unit_fee   bigint  NOT NULL,
    amount     bigint  NOT NULL,
    PRIMARY KEY (file_id, request_id, child_no)
);

-- Where each request stands, as the dentist checks it: withdrawn once withdrawn, else pending
-- (the funds' decision is recorded by their own systems, not sent through this feed).
CREATE VIEW edi.fse_prior_approval_status AS
SELECT s.request_id, s.practitioner_id, s.approval_key, s.registration_number,
       s.beneficiary_rank, s.requested_on, s.planned_start, s.estimated_total,
       CASE WHEN w.request_id IS NULL THEN 'pending' ELSE 'withdrawn' END AS status,
       s.file_id AS submitted_in, w.file_id AS withdrawn_in
FROM edi.fse_prior_approval s
LEFT JOIN edi.fse_prior_approval w ON w.approval_key = s.approval_key AND w.status = 'withdrawn'
WHERE s.status = 'submitted';
