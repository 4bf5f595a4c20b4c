-- Payroll v1 (formats/payroll/v1): employers' monthly salary declarations, one row per employee
-- and declaration. The declared period, channel and employer kind are header fields of the file.
-- Amounts are integer cents; hours are integer hundredths of an hour (151.67 h = 15167).
CREATE TABLE edi.payroll_salary_line (
    sender        text    NOT NULL,     -- the employer
    employee_id   text    NOT NULL,     -- the employee's CSM registration number
    file_id       bigint  NOT NULL REFERENCES edi.inbound_file (id),
    record_no     integer NOT NULL,
    last_name     text    NOT NULL,
    first_name    text    NOT NULL,
    hours_worked  integer NOT NULL CHECK (hours_worked BETWEEN 0 AND 74400),
    gross_salary  bigint,               -- exactly one of gross and net (net: household employers)
    net_salary    bigint,
    base_ccss     bigint,
    base_car      bigint,
    teleworking   boolean,
    PRIMARY KEY (file_id, employee_id),
    CHECK ((gross_salary IS NULL) <> (net_salary IS NULL))
);
CREATE INDEX payroll_salary_line_employee ON edi.payroll_salary_line (employee_id);
CREATE INDEX payroll_salary_line_sender ON edi.payroll_salary_line (sender);
