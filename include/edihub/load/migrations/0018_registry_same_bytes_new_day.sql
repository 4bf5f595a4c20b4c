-- Exactly once was "the same bytes load at most once". A registry snapshot's date is in its
-- name, not in its bytes: a document unchanged since the day before, or back to an earlier
-- content (A, then B, then A again), was refused as a duplicate, and B stayed in force.
-- A file's identity is now its sha256 and identity_name: its whole name for the feeds whose
-- names say what their bytes do not (edihub.feeds.NAME_IS_CONTENT), '' for the others, whose
-- rule is unchanged.
ALTER TABLE edi.inbound_file ADD COLUMN identity_name text NOT NULL DEFAULT '';
UPDATE edi.inbound_file SET identity_name = remote_name WHERE feed = 'registry';
DROP INDEX edi.inbound_file_loaded_sha256;
CREATE UNIQUE INDEX inbound_file_loaded_identity ON edi.inbound_file (sha256, identity_name)
    WHERE state IN ('loaded', 'loaded_with_errors');
