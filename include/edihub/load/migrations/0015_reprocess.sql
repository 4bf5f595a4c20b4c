-- Reprocessing and quarantine release (edihub.reprocess): a new attempt at an archived file is a
-- new row, linked to the row it was made from (as Mirth Connect's Original ID); the original's
-- state, errors and acknowledgment stay as they were.
ALTER TABLE edi.inbound_file
    ADD COLUMN original_file_id bigint REFERENCES edi.inbound_file (id);
-- At most one attempt of a file in flight or loaded at any time: two operators reprocessing
-- the same file at once get one attempt, and a loaded attempt ends the file's reprocessing.
CREATE UNIQUE INDEX inbound_file_live_attempt ON edi.inbound_file (original_file_id)
    WHERE state IN ('received', 'loaded', 'loaded_with_errors');
CREATE INDEX inbound_file_original ON edi.inbound_file (original_file_id)
    WHERE original_file_id IS NOT NULL;
