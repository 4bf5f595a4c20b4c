-- The KPI layer: one view per figure or chart of the dashboard (edihub.kpi), computed from the
-- hub's own tables only, so that every figure comes from data that went through collection,
-- validation and load. Deterministic: dates come from the data (registry snapshot dates,
-- issue and payment days, the files' receipt), never from now(). Ratios are fractions (0..1)
-- rounded to 4 places; NULL when there is nothing to divide by.
CREATE SCHEMA IF NOT EXISTS kpi;

-- ------------------------------------------------------------------ the insured
CREATE VIEW kpi.teleservice_subscribers AS
SELECT count(*)                                               AS subscribers,
       count(*) FILTER (WHERE i.email_validated)              AS with_validated_email,
       round(count(*) FILTER (WHERE i.email_validated)::numeric
             / nullif(count(*), 0), 4)                        AS validated_email_ratio,
       count(*) FILTER (WHERE i.dematerialisation)            AS with_dematerialisation,
       round(count(*) FILTER (WHERE i.dematerialisation)::numeric
             / nullif(count(*), 0), 4)                        AS dematerialisation_ratio,
       (SELECT max(snapshot_date) FROM edi.registry_snapshot
         WHERE document = 'insured')                          AS as_of
  FROM edi.registry_insured i
 WHERE i.beneficiary_rank = 0 AND i.teleservice_subscribed_on IS NOT NULL;
COMMENT ON VIEW kpi.teleservice_subscribers IS
'Teleservice subscribers: insured persons (rank 0 of edi.registry_insured, one per registration '
'number) with a teleservice_subscribed_on date; of whom with a validated e-mail (email_validated) '
'and with the dematerialisation option, counts and ratios. Rank 0 only: the account is the '
'insured''s (beneficiaries are covered through it, and statements are addressed to rank 0). '
'as_of: the insured snapshot''s date (edi.registry_snapshot).';

-- ------------------------------------------------------------------ the insurers
CREATE VIEW kpi.contracted_insurers AS
SELECT count(*) FILTER (WHERE convention_signed_on IS NOT NULL) AS contracted,
       count(*)                                                AS insurers,
       min(convention_signed_on)                               AS first_signed_on,
       (SELECT max(snapshot_date) FROM edi.registry_snapshot
         WHERE document = 'insurer')                           AS as_of
  FROM edi.registry_insurer;
COMMENT ON VIEW kpi.contracted_insurers IS
'Complementary insurers under convention with the funds: rows of edi.registry_insurer with a '
'convention_signed_on date (contracted), out of all insurers in the registry. as_of: the insurer '
'snapshot''s date.';

CREATE VIEW kpi.insurer_deliveries AS
SELECT e.insurer_id, r.name, e.export_day,
       count(*)::int         AS files,
       sum(e.row_count)::int AS rows
  FROM edi.export_file e
  LEFT JOIN edi.registry_insurer r ON r.insurer_id = e.insurer_id
 WHERE e.state = 'published'
 GROUP BY e.insurer_id, r.name, e.export_day;
COMMENT ON VIEW kpi.insurer_deliveries IS
'Per-insurer deliveries: published files (edi.export_file, state published) and the statement '
'lines they carried (row_count), per insurer and export day; name from edi.registry_insurer. '
'An empty numbered file counts as a file with 0 rows.';

-- ------------------------------------------------------------------ the employers
-- Each employer counts once, in the channel of its latest loaded declaration (by period, then
-- by file): "85 % of employers declare electronically" is about how they declare now.
CREATE VIEW kpi.employer_channel AS
SELECT DISTINCT ON (d.employer_id)
       d.employer_id, d.channel, d.period AS latest_period, e.kind, e.size
  FROM edi.payroll_declaration d
  LEFT JOIN edi.registry_employer e ON e.employer_id = d.employer_id
 ORDER BY d.employer_id, d.period DESC, d.file_id DESC;
COMMENT ON VIEW kpi.employer_channel IS
'One row per employer with a loaded salary declaration (edi.payroll_declaration): the channel '
'(electronic or paper) of its latest declaration (latest period, then latest file), its kind and '
'size (employees) from edi.registry_employer (NULL if not in the registry).';

CREATE VIEW kpi.employers_by_channel AS
WITH lines AS (
    SELECT channel, count(*)::int AS declarations, sum(lines)::int AS lines
      FROM edi.payroll_declaration GROUP BY channel
)
SELECT c.channel,
       count(*)::int                                               AS employers,
       round(count(*)::numeric / sum(count(*)) OVER (), 4)        AS employer_ratio,
       round(avg(c.size), 2)                                       AS avg_employees,
       coalesce(l.declarations, 0)                                 AS declarations,
       coalesce(l.lines, 0)                                        AS lines,
       round(l.lines::numeric / nullif(l.declarations, 0), 2)     AS avg_lines_per_declaration,
       round(coalesce(l.lines, 0)::numeric
             / nullif((SELECT sum(lines) FROM lines), 0), 4)       AS line_ratio
  FROM kpi.employer_channel c
  LEFT JOIN lines l ON l.channel = c.channel
 GROUP BY c.channel, l.declarations, l.lines;
COMMENT ON VIEW kpi.employers_by_channel IS
'Employers by declaration channel (kpi.employer_channel: each employer in the channel of its '
'latest declaration): employers and their share, average size in employees '
'(edi.registry_employer.size); and over every loaded declaration of that channel '
'(edi.payroll_declaration): declarations, salary lines, lines per declaration and the channel''s '
'share of all salary lines.';

CREATE VIEW kpi.salary_lines_by_channel_month AS
SELECT period, channel, count(*)::int AS declarations, sum(lines)::int AS lines,
       round(sum(lines)::numeric / nullif(sum(sum(lines)) OVER (PARTITION BY period), 0), 4)
           AS line_ratio
  FROM edi.payroll_declaration
 GROUP BY period, channel;
COMMENT ON VIEW kpi.salary_lines_by_channel_month IS
'Salary declarations and lines per declared period (YYYY-MM) and channel, from '
'edi.payroll_declaration, with the channel''s share of the period''s lines.';

-- Household employers' teleservice, month by month from its opening (October 2015) to the month
-- of the employer snapshot: new subscriptions and the running total (an earlier date counts in
-- the first month), against all household employers of the registry.
CREATE VIEW kpi.household_teleservice_monthly AS
WITH household AS (
    SELECT teleservice_subscribed_on AS subscribed_on
      FROM edi.registry_employer WHERE kind = 'household'
), span AS (
    SELECT max(snapshot_date) AS as_of FROM edi.registry_snapshot WHERE document = 'employer'
)
SELECT m.month::date AS month,
       (SELECT count(*) FROM household h
         WHERE h.subscribed_on >= m.month AND h.subscribed_on < m.month + interval '1 month'
            OR (m.month = date '2015-10-01' AND h.subscribed_on < m.month))::int
           AS new_subscribers,
       (SELECT count(*) FROM household h
         WHERE h.subscribed_on < m.month + interval '1 month')::int AS subscribers,
       (SELECT count(*) FROM household)::int AS household_employers,
       round((SELECT count(*) FROM household h
               WHERE h.subscribed_on < m.month + interval '1 month')::numeric
             / nullif((SELECT count(*) FROM household), 0), 4) AS subscriber_ratio
  FROM span,
       generate_series(date '2015-10-01', date_trunc('month', span.as_of), interval '1 month')
           AS m(month);
COMMENT ON VIEW kpi.household_teleservice_monthly IS
'Household employers'' teleservice (edi.registry_employer, kind household, '
'teleservice_subscribed_on): per month from October 2015 (the service''s opening) to the employer '
'snapshot''s month, the new subscribers (earlier dates counted in October 2015), the cumulative '
'subscribers at the month''s end, all household employers of the registry, and the subscribers'' '
'share of them.';

-- ------------------------------------------------------------------ practitioners and FSE
CREATE VIEW kpi.fse_practitioners_by_kind AS
SELECT coalesce(p.kind, 'unknown') AS kind,
       count(DISTINCT s.sender)::int AS practitioners,
       count(*)::int                 AS care_sheets
  FROM edi.fse_care_sheet s
  LEFT JOIN edi.registry_practitioner p ON p.practitioner_id = s.sender
 GROUP BY coalesce(p.kind, 'unknown');
COMMENT ON VIEW kpi.fse_practitioners_by_kind IS
'Practitioners sending FSE: distinct senders of loaded care sheets (edi.fse_care_sheet, v1 and '
'v2) by their kind in edi.registry_practitioner (general_practitioner, specialist, dentist; '
'unknown if no longer in the registry), with their care sheets.';

CREATE VIEW kpi.fse_monthly_by_kind AS
SELECT date_trunc('month', s.care_date)::date AS month,
       coalesce(p.kind, 'unknown')           AS kind,
       count(*)::int                         AS care_sheets,
       count(DISTINCT s.sender)::int         AS practitioners
  FROM edi.fse_care_sheet s
  LEFT JOIN edi.registry_practitioner p ON p.practitioner_id = s.sender
 GROUP BY 1, 2;
COMMENT ON VIEW kpi.fse_monthly_by_kind IS
'Loaded care sheets (edi.fse_care_sheet) per month of care (care_date) and practitioner kind '
'(edi.registry_practitioner.kind), with the practitioners who sent them. Month of care, not of '
'receipt: a resent or late file does not move care to another month.';

-- ------------------------------------------------------------------ pharmacies
CREATE VIEW kpi.pharmacies_teletransmitting AS
SELECT i.sender AS pharmacy_id, r.name, r.teletransmission_start_date,
       count(*)::int AS invoices,
       min(i.dispensing_date) AS first_dispensing, max(i.dispensing_date) AS last_dispensing
  FROM edi.pharmacy_invoice i
  LEFT JOIN edi.registry_pharmacy r ON r.pharmacy_id = i.sender
 GROUP BY i.sender, r.name, r.teletransmission_start_date;
COMMENT ON VIEW kpi.pharmacies_teletransmitting IS
'Pharmacies teletransmitting: distinct senders of loaded invoices (edi.pharmacy_invoice), with '
'their teletransmission_start_date and name from edi.registry_pharmacy, their invoices and the '
'span of dispensing dates.';

-- ------------------------------------------------------------------ statements
CREATE VIEW kpi.statements_by_channel_daily AS
SELECT issued_on,
       count(*) FILTER (WHERE channel = 'email')::int AS email,
       count(*) FILTER (WHERE channel = 'paper')::int AS paper,
       count(*)::int                                  AS statements,
       round(count(*) FILTER (WHERE channel = 'email')::numeric / count(*), 4) AS email_ratio
  FROM edi.statement
 GROUP BY issued_on;
COMMENT ON VIEW kpi.statements_by_channel_daily IS
'Claim statements (edi.statement) per issue day by the channel decided at issue (e-mail: '
'validated e-mail and dematerialisation; else paper), and the e-mail share. An e-mail that later '
'fell back to paper (edi.statement_delivery) still counts as e-mail: the route is the insured''s '
'choice the brochure counts.';

CREATE VIEW kpi.statements_by_channel_monthly AS
SELECT date_trunc('month', issued_on)::date AS month,
       sum(email)::int AS email, sum(paper)::int AS paper, sum(statements)::int AS statements,
       round(sum(email)::numeric / sum(statements), 4) AS email_ratio
  FROM kpi.statements_by_channel_daily
 GROUP BY 1;
COMMENT ON VIEW kpi.statements_by_channel_monthly IS
'kpi.statements_by_channel_daily summed per month of issue.';

-- ------------------------------------------------------------------ reimbursement delay
-- One row per claim (care sheet or pharmacy invoice) on a statement: its first reimbursement.
-- The three days of the brochure count from the day the funds received the claim (its file's
-- receipt, Monaco date) to the statement's payment date: before receipt the funds cannot act.
CREATE VIEW kpi.reimbursement_delay AS
SELECT c.source_kind, c.source_sender, c.source_record_id,
       min(c.care_date)                                               AS care_date,
       (min(f.received_at) AT TIME ZONE 'Europe/Monaco')::date         AS received_on,
       min(s.issued_on)                                                AS issued_on,
       max(s.payment_date)                                             AS payment_date,
       max(s.payment_date) - min(c.care_date)                          AS days_from_care,
       max(s.payment_date) - (min(f.received_at) AT TIME ZONE 'Europe/Monaco')::date
                                                                       AS days_from_receipt
  FROM edi.statement_line sl
  JOIN edi.statement s  ON s.statement_id = sl.statement_id
  JOIN edi.claim_line c ON c.claim_line_id = sl.claim_line_id
  JOIN edi.inbound_file f ON f.id = c.source_file_id
 WHERE sl.kind = 'original'
 GROUP BY c.source_kind, c.source_sender, c.source_record_id;
COMMENT ON VIEW kpi.reimbursement_delay IS
'Per claim (care sheet or pharmacy invoice: source kind, sender, record id of edi.claim_line) '
'reimbursed on a statement (edi.statement_line original lines; corrections left out): date of '
'care, day the file was received (edi.inbound_file.received_at in Monaco time), issue and payment '
'dates (edi.statement), and the days from care and from receipt to payment. The brochure''s '
'three days count from receipt.';

CREATE VIEW kpi.reimbursement_delay_distribution AS
SELECT d.days,
       count(*) FILTER (WHERE d.measure = 'receipt')::int AS from_receipt,
       count(*) FILTER (WHERE d.measure = 'care')::int    AS from_care
  FROM (SELECT 'receipt' AS measure, days_from_receipt AS days FROM kpi.reimbursement_delay
        UNION ALL
        SELECT 'care', days_from_care FROM kpi.reimbursement_delay) d
 GROUP BY d.days;
COMMENT ON VIEW kpi.reimbursement_delay_distribution IS
'How many claims of kpi.reimbursement_delay were paid a given number of days after receipt '
'(from_receipt) and after care (from_care).';

CREATE VIEW kpi.reimbursement_within_three_days AS
SELECT count(*)::int                                              AS claims,
       count(*) FILTER (WHERE days_from_receipt <= 3)::int        AS within_three_days,
       round(count(*) FILTER (WHERE days_from_receipt <= 3)::numeric
             / nullif(count(*), 0), 4)                            AS within_three_days_ratio,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY days_from_receipt) AS median_days_from_receipt,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY days_from_care)    AS median_days_from_care,
       max(days_from_receipt)                                     AS max_days_from_receipt
  FROM kpi.reimbursement_delay;
COMMENT ON VIEW kpi.reimbursement_within_three_days IS
'The brochure''s promise: of the claims of kpi.reimbursement_delay, those paid within three days '
'of their receipt by the funds, their share, and the median delays from receipt and from care.';
