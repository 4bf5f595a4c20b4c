-- The file's header as read (sender, batch, period, channel, ...): what a feed's later steps
-- and the engineers' pages need to know about the file as a whole.
ALTER TABLE edi.inbound_file ADD COLUMN header jsonb;
