-- An insurer's export options (contracts/overrides, edihub.overrides.ExportOptions) were read
-- afresh at each publication: an override changed after a file was published made its
-- republication render other bytes, refused as PublishedFileDiffers. They are now recorded with
-- the plan, as its lines, number and format are, and a planned file renders from them alone.
-- '{}' is the defaults: the files planned before keep their bytes, as the format alone made
-- them (overrides came in the same release as this migration).
ALTER TABLE edi.export_file ADD COLUMN export_options jsonb NOT NULL DEFAULT '{}';
