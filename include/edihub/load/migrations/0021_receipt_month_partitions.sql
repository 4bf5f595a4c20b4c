-- The message store by month of receipt, so that retention drops months (edihub.retention).
--
-- Every table a file fills and nothing else refers to (its records and their children, the
-- payroll contributions computed from them, its errors and rule results) gains
-- received_month, the first day of the UTC month its file was received, and becomes
-- partitioned by it: one partition a month (<table>_YYYYMM) and a DEFAULT one for rows that
-- arrive before their month's partition was made. A file's rows all share one month, so its
-- load still writes one partition per table; purging a month of data is dropping one
-- partition per table, never deleting rows (Mirth's database that never shrinks, anchors A.3).
--
-- A partitioned table's unique keys must hold its partition key: the business keys
-- (sheet_id, sender + invoice_number, ...) are now unique within a month of receipt. Across
-- months the data contracts' lookups still refuse a record already loaded (they read every
-- partition), and a record older than its care window is refused anyway; the key catches two
-- files of the same month loaded at the same time, as before.
--
-- The foreign keys between these tables (a line to its invoice, an act to its care sheet, a
-- contribution to its salary line) are not carried over: PostgreSQL ties such a key to each
-- partition of the table it points at, so rows could never move out of a DEFAULT partition
-- into their month's, nor a month be dropped before its children's. A child and its parent
-- come from the same file, staged together and COPYed in one transaction (collect.load);
-- their foreign keys to edi.inbound_file stay.
--
-- Registry tables hold current versions (0013), not a month's messages, and stay as they are.
-- Statements and exports are the funds' accounts of what was paid and sent: they stay whole,
-- but a statement's e-mail address can now be purged (email_purged_at) once it was used.

-- 1. ensure_month_partition (0017) for date keys as well as timestamptz ones: the bounds are
--    the month's first days, written in the key's own type (a date is compared as a date,
--    not as midnight in the session's time zone); and for tables with generated columns,
--    which the rows it moves leave to be generated again.
CREATE OR REPLACE FUNCTION edi.ensure_month_partition(parent regclass, month date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first     timestamp := date_trunc('month', month::timestamp);
    schema    text;
    base      text;
    part      text;
    key       text;
    by_day    boolean;
    lo        text;
    hi        text;
    fallback  regclass;
    moved     bigint;
    stored    text;  -- the columns a row is written with: all but the generated ones
BEGIN
    SELECT n.nspname, c.relname INTO schema, base
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    part := base || '_' || to_char(first, 'YYYYMM');
    IF to_regclass(format('%I.%I', schema, part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT a.attname, a.atttypid = 'date'::regtype INTO key, by_day
      FROM pg_partitioned_table p
      JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
     WHERE p.partrelid = parent;
    IF by_day THEN
        lo := first::date::text;
        hi := (first + interval '1 month')::date::text;
    ELSE
        lo := (first AT TIME ZONE 'UTC')::text;
        hi := ((first + interval '1 month') AT TIME ZONE 'UTC')::text;
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO stored
      FROM pg_attribute WHERE attrelid = parent AND attnum > 0 AND NOT attisdropped
       AND attgenerated = '';
    SELECT i.inhrelid::regclass INTO fallback FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
    -- Rows of this month in the default partition would make CREATE ... PARTITION OF fail:
    -- they wait in a temporary table meanwhile, ids and all.
    EXECUTE format('CREATE TEMP TABLE _month_rows ON COMMIT DROP AS SELECT %s FROM %s'
                   ' WHERE %I >= %L AND %I < %L', stored, fallback, key, lo, key, hi);
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved > 0 THEN
        EXECUTE format('DELETE FROM %s WHERE %I >= %L AND %I < %L', fallback, key, lo, key, hi);
    END IF;
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                   schema, part, parent, lo, hi);
    IF moved > 0 THEN
        EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT * FROM _month_rows',
                       parent, stored);
    END IF;
    DROP TABLE _month_rows;
    RETURN part;
END
$$;

-- 2. The month of receipt a file's rows are filed under (the load and this migration).
CREATE FUNCTION edi.receipt_month(received_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE RETURN date_trunc('month', received_at AT TIME ZONE 'UTC')::date;

-- 3. The tables.
CREATE TEMP TABLE _convert ON COMMIT DROP AS
SELECT ord, 'edi.' || name AS tbl, name
  FROM unnest(ARRAY['fse_care_sheet', 'fse_act', 'fse_exemption_request',
                    'fse_invalidity_request', 'fse_prior_approval', 'fse_prior_approval_act',
                    'fse_work_stoppage', 'pharmacy_invoice', 'pharmacy_invoice_line',
                    'payroll_salary_line', 'payroll_contribution', 'file_error',
                    'validation_result']) WITH ORDINALITY AS t(name, ord);

-- What is rebuilt on the new tables, read before anything is renamed (the definitions then
-- name the tables as they are named now).
CREATE TEMP TABLE _keys ON COMMIT DROP AS
SELECT c.conrelid::regclass::text AS tbl, c.conname, c.contype,
       pg_get_constraintdef(c.oid) AS definition,
       c.confrelid::regclass::text AS refers_to
  FROM pg_constraint c
 WHERE c.conrelid IN (SELECT tbl::regclass FROM _convert) AND c.contype IN ('p', 'u', 'f');
CREATE TEMP TABLE _indexes ON COMMIT DROP AS
SELECT i.indrelid::regclass::text AS tbl, i.indisunique, pg_get_indexdef(i.indexrelid) AS definition
  FROM pg_index i
 WHERE i.indrelid IN (SELECT tbl::regclass FROM _convert)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                    WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid);
CREATE TEMP TABLE _views ON COMMIT DROP AS
SELECT DISTINCT v.oid::regclass::text AS view,
       regexp_replace(pg_get_viewdef(v.oid), ';\s*$', '') AS definition
  FROM pg_depend d
  JOIN pg_rewrite r ON r.oid = d.objid
  JOIN pg_class v ON v.oid = r.ev_class
 WHERE d.refobjid IN (SELECT tbl::regclass FROM _convert) AND v.oid <> d.refobjid;

DO $$
DECLARE
    t    record;
    k    record;
    ix   record;
    old  text;
    cols   text;  -- the old table's columns but the generated ones, which the new one makes
    values text;  -- the same, of the old table's rows
BEGIN
    IF EXISTS (SELECT 1 FROM _indexes WHERE indisunique) THEN
        RAISE 'a unique index outside a constraint: give it the partition key first';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint c JOIN _convert v ON c.confrelid = v.tbl::regclass
                WHERE c.conrelid NOT IN (SELECT tbl::regclass FROM _convert)) THEN
        RAISE 'a table outside the message store refers to one of its tables';
    END IF;
    FOR t IN SELECT * FROM _convert ORDER BY ord LOOP
        old := t.name || '_0021';
        -- Free the index (and so the primary key's) names for the new table.
        FOR ix IN SELECT i.indexrelid::regclass::text AS name, c.relname
                    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   WHERE i.indrelid = t.tbl::regclass LOOP
            EXECUTE format('ALTER INDEX %s RENAME TO %I', ix.name, left(ix.relname, 50) || '_0021');
        END LOOP;
        EXECUTE format('ALTER TABLE %s RENAME TO %I', t.tbl, old);
        EXECUTE format('CREATE TABLE %s (LIKE edi.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                       ' INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STORAGE'
                       ' INCLUDING COMMENTS, received_month date NOT NULL)'
                       ' PARTITION BY RANGE (received_month)', t.tbl, old);
        EXECUTE format('COMMENT ON COLUMN %s.received_month IS %L', t.tbl,
                       'First day of the UTC month the file was received: the partition key.');
        EXECUTE format('CREATE TABLE edi.%I PARTITION OF %s DEFAULT', t.name || '_default', t.tbl);
        FOR k IN SELECT * FROM _keys WHERE tbl = t.tbl ORDER BY contype DESC, conname LOOP
            IF k.contype IN ('p', 'u') THEN
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', t.tbl, k.conname,
                               regexp_replace(k.definition, '\)$', ', received_month)'));
            ELSIF k.refers_to IN (SELECT tbl FROM _convert) THEN
                CONTINUE;  -- see above
            ELSE
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', t.tbl, k.conname,
                               k.definition);
            END IF;
        END LOOP;
        FOR ix IN SELECT definition FROM _indexes WHERE tbl = t.tbl LOOP
            EXECUTE ix.definition;
        END LOOP;
        -- The months its rows were received in, this one and the next three.
        EXECUTE format(
            'SELECT edi.ensure_month_partition(%L, month) FROM ('
            ' SELECT DISTINCT edi.receipt_month(f.received_at) AS month'
            '   FROM edi.%I o JOIN edi.inbound_file f ON f.id = o.file_id'
            ' UNION SELECT (now() AT TIME ZONE ''UTC'' + make_interval(months => ahead))::date'
            '   FROM generate_series(0, 3) AS ahead) AS months', t.tbl, old);
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
               string_agg('o.' || quote_ident(attname), ', ' ORDER BY attnum) INTO cols, values
          FROM pg_attribute WHERE attrelid = format('edi.%I', old)::regclass AND attnum > 0
           AND NOT attisdropped AND attgenerated = '';
        EXECUTE format(
            'INSERT INTO %s (%s, received_month) SELECT %s, edi.receipt_month(f.received_at)'
            ' FROM edi.%I o JOIN edi.inbound_file f ON f.id = o.file_id',
            t.tbl, cols, values, old);
    END LOOP;
    -- The views read the new tables (CREATE OR REPLACE keeps their comments and dependants).
    FOR k IN SELECT * FROM _views LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', k.view, k.definition);
    END LOOP;
    FOR t IN SELECT * FROM _convert ORDER BY ord DESC LOOP
        EXECUTE format('DROP TABLE edi.%I', t.name || '_0021');
    END LOOP;
END
$$;

-- 4. When retention dropped the month of a file's data (the file's row, its archive record
--    and acknowledgment stay: "what happened to file X" still answers).
ALTER TABLE edi.inbound_file ADD COLUMN data_purged_at timestamptz;

-- 5. A statement's e-mail address, once its delivery is decided and the mail period over.
ALTER TABLE edi.statement ADD COLUMN email_purged_at timestamptz;
ALTER TABLE edi.statement DROP CONSTRAINT statement_check1;
ALTER TABLE edi.statement ADD CONSTRAINT statement_email_kept_or_purged
    CHECK (channel = 'paper' OR email IS NOT NULL OR email_purged_at IS NOT NULL);
