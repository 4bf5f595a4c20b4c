-- Every loaded record carries its sender: ids such as invoice numbers are unique per partner,
-- not nationally, and exports and KPIs select by partner.
ALTER TABLE edi.fse_care_sheet ADD COLUMN sender text;
UPDATE edi.fse_care_sheet s SET sender = f.sender FROM edi.inbound_file f WHERE f.id = s.file_id;
ALTER TABLE edi.fse_care_sheet ALTER COLUMN sender SET NOT NULL;
ALTER TABLE edi.fse_act ADD COLUMN sender text;
UPDATE edi.fse_act a SET sender = f.sender FROM edi.inbound_file f WHERE f.id = a.file_id;
ALTER TABLE edi.fse_act ALTER COLUMN sender SET NOT NULL;

-- Pharmacy invoices (fixed-width feed, formats/pharmacy/v1) and their lines. Amounts in cents.
CREATE TABLE edi.pharmacy_invoice (
    sender              text    NOT NULL,     -- the pharmacy
    invoice_number      text    NOT NULL,
    file_id             bigint  NOT NULL REFERENCES edi.inbound_file (id),
    record_no           integer NOT NULL,
    registration_number text    NOT NULL,
    beneficiary_rank    integer NOT NULL,
    prescription_ref    text    NOT NULL,
    prescriber_id       text    NOT NULL,
    dispensing_date     date    NOT NULL,
    total               bigint  NOT NULL,
    PRIMARY KEY (sender, invoice_number)
);
CREATE INDEX pharmacy_invoice_file ON edi.pharmacy_invoice (file_id);

CREATE TABLE edi.pharmacy_invoice_line (
    sender                 text    NOT NULL,
    invoice_number         text    NOT NULL,
    child_no               integer NOT NULL,
    file_id                bigint  NOT NULL REFERENCES edi.inbound_file (id),
    product_code           text    NOT NULL,
    quantity               integer NOT NULL,
    unit_price             bigint  NOT NULL,
    amount                 bigint  NOT NULL,
    reimbursement_category text    NOT NULL,
    PRIMARY KEY (sender, invoice_number, child_no),
    FOREIGN KEY (sender, invoice_number) REFERENCES edi.pharmacy_invoice (sender, invoice_number)
);
