-- Payroll v2 (formats/payroll/v2): a declaration names its employer apart from its sender, since
-- the funds' staff send the declarations they key in from paper from their own account. Salary
-- lines and their dues belong to the employer, not to the account that sent them; in a v1 file
-- the sender is the employer.

-- Filled by the load's COPY from the file's header (format.yaml: record.from_header; the
-- header's employer in v2, its sender in v1).
ALTER TABLE edi.payroll_salary_line ADD COLUMN employer_id text;
UPDATE edi.payroll_salary_line SET employer_id = sender;
ALTER TABLE edi.payroll_salary_line ALTER COLUMN employer_id SET NOT NULL;
CREATE INDEX payroll_salary_line_employer ON edi.payroll_salary_line (employer_id);

ALTER TABLE edi.payroll_contribution ADD COLUMN employer_id text;
UPDATE edi.payroll_contribution SET employer_id = sender;
ALTER TABLE edi.payroll_contribution ALTER COLUMN employer_id SET NOT NULL;
CREATE INDEX payroll_contribution_employer ON edi.payroll_contribution (employer_id, period);

-- One row per loaded declaration: who it is for, who sent it and how (electronic, or keyed in
-- from paper), and how many salary lines were loaded. The KPI dashboard counts employers by
-- channel and sizes the paper declarations from it.
CREATE VIEW edi.payroll_declaration AS
SELECT f.id                                      AS file_id,
       coalesce(f.header ->> 'employer', f.sender) AS employer_id,
       f.sender,
       f.header ->> 'channel'                    AS channel,
       f.header ->> 'period'                     AS period,
       f.header ->> 'employer_kind'              AS employer_kind,
       f.records_loaded                          AS lines
  FROM edi.inbound_file f
 WHERE f.feed = 'payroll' AND f.state IN ('loaded', 'loaded_with_errors');

-- Payroll v2 lines may declare the gross with the net the payslip shows (the net must not be
-- above the gross: rule PAY-R08); v1's "exactly one of the two" becomes "at least one".
ALTER TABLE edi.payroll_salary_line DROP CONSTRAINT payroll_salary_line_check;
ALTER TABLE edi.payroll_salary_line ADD CONSTRAINT payroll_salary_line_salary_declared
    CHECK (gross_salary IS NOT NULL OR net_salary IS NOT NULL);
