-- What each declared salary line costs, per fund, computed by the hub at load time (in the
-- load's transaction) from the rates in force on the last day of the period. For household
-- employers declaring net salaries, the gross is the hub's (payroll/gross_net.py).
CREATE TABLE edi.payroll_contribution (
    file_id                bigint  NOT NULL,
    employee_id            text    NOT NULL,
    sender                 text    NOT NULL,
    period                 text    NOT NULL,      -- YYYY-MM
    gross                  bigint  NOT NULL,      -- cents
    net                    bigint  NOT NULL,
    gross_computed         boolean NOT NULL,      -- true: declared net, gross from net
    ccss_base              bigint  NOT NULL,
    ccss_employer          bigint  NOT NULL,
    car_employer           bigint  NOT NULL,
    car_employee           bigint  NOT NULL,
    ac_employer            bigint  NOT NULL,
    ac_employee            bigint  NOT NULL,
    supplementary_employer bigint  NOT NULL,
    supplementary_employee bigint  NOT NULL,
    rates_assumed          text[]  NOT NULL,      -- parameters not documented for the period
    PRIMARY KEY (file_id, employee_id),
    FOREIGN KEY (file_id, employee_id) REFERENCES edi.payroll_salary_line (file_id, employee_id)
);
