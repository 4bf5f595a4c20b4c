-- The registry's history, kept so that a snapshot writes only what it changes.
--
-- Until now every row of every snapshot was written twice: into its document's table and, as
-- an open version, into edi.registry_history (jsonb, two indexes). A first snapshot of a
-- million insured paid for two loads. Now the current version of a row IS its row in the
-- document's table, which says since when it is unchanged; only the versions a snapshot closes
-- (changed or dropped rows) are written, into edi.registry_past_version. The view
-- edi.registry_history joins both, with the columns and meaning the table had.
--
-- A row's file_id, sender and record_no are those of the snapshot that brought its current
-- version: a later snapshot that leaves a row as it was does not rewrite it.

ALTER TABLE edi.registry_insured ADD COLUMN unchanged_since date;
ALTER TABLE edi.registry_card ADD COLUMN unchanged_since date;
ALTER TABLE edi.registry_insurer ADD COLUMN unchanged_since date;
ALTER TABLE edi.registry_practitioner ADD COLUMN unchanged_since date;
ALTER TABLE edi.registry_pharmacy ADD COLUMN unchanged_since date;
ALTER TABLE edi.registry_employer ADD COLUMN unchanged_since date;
ALTER TABLE edi.registry_sftp_key ADD COLUMN unchanged_since date;

-- Rows already loaded take the start of their open version.
UPDATE edi.registry_insured t SET unchanged_since = h.valid_from FROM edi.registry_history h
 WHERE h.document = 'insured' AND h.valid_to IS NULL
   AND h.key = concat_ws('/', t.registration_number, t.beneficiary_rank);
UPDATE edi.registry_card t SET unchanged_since = h.valid_from FROM edi.registry_history h
 WHERE h.document = 'card' AND h.valid_to IS NULL
   AND h.key = concat_ws('/', t.registration_number, t.beneficiary_rank, t.fse_code);
UPDATE edi.registry_insurer t SET unchanged_since = h.valid_from FROM edi.registry_history h
 WHERE h.document = 'insurer' AND h.valid_to IS NULL AND h.key = t.insurer_id;
UPDATE edi.registry_practitioner t SET unchanged_since = h.valid_from
  FROM edi.registry_history h
 WHERE h.document = 'practitioner' AND h.valid_to IS NULL AND h.key = t.practitioner_id;
UPDATE edi.registry_pharmacy t SET unchanged_since = h.valid_from FROM edi.registry_history h
 WHERE h.document = 'pharmacy' AND h.valid_to IS NULL AND h.key = t.pharmacy_id;
UPDATE edi.registry_employer t SET unchanged_since = h.valid_from FROM edi.registry_history h
 WHERE h.document = 'employer' AND h.valid_to IS NULL AND h.key = t.employer_id;
UPDATE edi.registry_sftp_key t SET unchanged_since = h.valid_from FROM edi.registry_history h
 WHERE h.document = 'sftp_key' AND h.valid_to IS NULL
   AND h.key = concat_ws('/', t.sftp_account, t.public_key);

ALTER TABLE edi.registry_insured ALTER COLUMN unchanged_since SET NOT NULL;
ALTER TABLE edi.registry_card ALTER COLUMN unchanged_since SET NOT NULL;
ALTER TABLE edi.registry_insurer ALTER COLUMN unchanged_since SET NOT NULL;
ALTER TABLE edi.registry_practitioner ALTER COLUMN unchanged_since SET NOT NULL;
ALTER TABLE edi.registry_pharmacy ALTER COLUMN unchanged_since SET NOT NULL;
ALTER TABLE edi.registry_employer ALTER COLUMN unchanged_since SET NOT NULL;
ALTER TABLE edi.registry_sftp_key ALTER COLUMN unchanged_since SET NOT NULL;

-- The closed versions stay where they were; the open ones are the tables' rows now.
DELETE FROM edi.registry_history WHERE valid_to IS NULL;
DROP INDEX edi.registry_history_current;
ALTER TABLE edi.registry_history RENAME TO registry_past_version;
ALTER INDEX edi.registry_history_key RENAME TO registry_past_version_key;
ALTER TABLE edi.registry_past_version ALTER COLUMN valid_to SET NOT NULL;

-- Every version of every registry row: valid from the snapshot that brought it until the one
-- that changed or dropped it (exclusive; null while current). key is the document's snapshot
-- key columns (formats/registry/v1) joined by '/'; row is the row's columns without the load's
-- bookkeeping.
CREATE VIEW edi.registry_history AS
SELECT document, key, valid_from, valid_to, row, file_id FROM edi.registry_past_version
UNION ALL
SELECT 'insured', concat_ws('/', t.registration_number, t.beneficiary_rank),
       t.unchanged_since, NULL::date,
       to_jsonb(t) - '{file_id,sender,record_no,unchanged_since}'::text[], t.file_id
  FROM edi.registry_insured t
UNION ALL
SELECT 'card', concat_ws('/', t.registration_number, t.beneficiary_rank, t.fse_code),
       t.unchanged_since, NULL::date,
       to_jsonb(t) - '{file_id,sender,record_no,unchanged_since}'::text[], t.file_id
  FROM edi.registry_card t
UNION ALL
SELECT 'insurer', t.insurer_id, t.unchanged_since, NULL::date,
       to_jsonb(t) - '{file_id,sender,record_no,unchanged_since}'::text[], t.file_id
  FROM edi.registry_insurer t
UNION ALL
SELECT 'practitioner', t.practitioner_id, t.unchanged_since, NULL::date,
       to_jsonb(t) - '{file_id,sender,record_no,unchanged_since}'::text[], t.file_id
  FROM edi.registry_practitioner t
UNION ALL
SELECT 'pharmacy', t.pharmacy_id, t.unchanged_since, NULL::date,
       to_jsonb(t) - '{file_id,sender,record_no,unchanged_since}'::text[], t.file_id
  FROM edi.registry_pharmacy t
UNION ALL
SELECT 'employer', t.employer_id, t.unchanged_since, NULL::date,
       to_jsonb(t) - '{file_id,sender,record_no,unchanged_since}'::text[], t.file_id
  FROM edi.registry_employer t
UNION ALL
SELECT 'sftp_key', concat_ws('/', t.sftp_account, t.public_key), t.unchanged_since, NULL::date,
       to_jsonb(t) - '{file_id,sender,record_no,unchanged_since}'::text[], t.file_id
  FROM edi.registry_sftp_key t;
