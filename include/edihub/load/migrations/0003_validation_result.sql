-- The data-contract results of every validated file, rule by rule (kept in the database, not
-- in an ever-growing folder of GX result files): what ran, on how many rows, how many failed.
CREATE TABLE edi.validation_result (
    file_id    bigint  NOT NULL REFERENCES edi.inbound_file (id),
    table_name text    NOT NULL,   -- the suite: record table, child table, or "file"
    rule       text    NOT NULL,
    on_failure text    NOT NULL CHECK (on_failure IN ('reject_record', 'reject_file')),
    checked    bigint  NOT NULL,
    failed     bigint  NOT NULL,
    PRIMARY KEY (file_id, table_name, rule)
);
