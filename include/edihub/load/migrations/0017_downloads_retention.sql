-- Retention (edihub.retention) and the download audit (edihub.sftp.downloads).
--
-- 1. Monthly range partitions, so that purging old rows is dropping a partition: no table
--    that never shrinks, no vacuum of millions of deleted rows. edi.ensure_month_partition
--    creates the partition of one month of any table partitioned by a timestamptz range
--    (named <table>_YYYYMM), moving into it the rows its DEFAULT partition holds for that
--    month (there only if the partitions were not created ahead in time). It returns the
--    name of the partition it created, NULL if it was there.
-- 2. edi.audit_event becomes such a table: the events of 0014 move over with their ids.
-- 3. edi.sftp_log_cursor: how far OpenSSH's sftp log has been read into the audit trail.

CREATE FUNCTION edi.ensure_month_partition(parent regclass, month date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo        timestamptz := date_trunc('month', month::timestamp) AT TIME ZONE 'UTC';
    hi        timestamptz := (date_trunc('month', month::timestamp) + interval '1 month')
                             AT TIME ZONE 'UTC';
    schema    text;
    base      text;
    part      text;
    key       text;
    fallback  regclass;
    moved     bigint;
BEGIN
    SELECT n.nspname, c.relname INTO schema, base
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    part := base || '_' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
    IF to_regclass(format('%I.%I', schema, part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT a.attname INTO key FROM pg_partitioned_table p
      JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
     WHERE p.partrelid = parent;
    SELECT i.inhrelid::regclass INTO fallback FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
    -- Rows of this month in the default partition would make CREATE ... PARTITION OF fail:
    -- they wait in a temporary table meanwhile, ids and all.
    EXECUTE format('CREATE TEMP TABLE _month_rows ON COMMIT DROP AS SELECT * FROM %s'
                   ' WHERE %I >= $1 AND %I < $2', fallback, key, key) USING lo, hi;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved > 0 THEN
        EXECUTE format('DELETE FROM %s WHERE %I >= $1 AND %I < $2', fallback, key, key)
          USING lo, hi;
    END IF;
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                   schema, part, parent, lo, hi);
    IF moved > 0 THEN
        EXECUTE format('INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM _month_rows',
                       parent);
    END IF;
    DROP TABLE _month_rows;
    RETURN part;
END
$$;

ALTER TABLE edi.audit_event RENAME TO audit_event_0014;
ALTER INDEX edi.audit_event_subject RENAME TO audit_event_0014_subject;
ALTER INDEX edi.audit_event_action RENAME TO audit_event_0014_action;
ALTER INDEX edi.audit_event_pkey RENAME TO audit_event_0014_pkey;

-- As 0014's, partitioned by month of ``at`` (which the primary key must then include).
CREATE TABLE edi.audit_event (
    id       bigint      GENERATED ALWAYS AS IDENTITY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    action   text        NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    subject  text        NOT NULL,
    detail   jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE INDEX audit_event_subject ON edi.audit_event (subject, at);
CREATE INDEX audit_event_action ON edi.audit_event (action, at);
-- Was this file downloaded (the alerts, retention, a file's journey): by action and file name.
CREATE INDEX audit_event_file_name ON edi.audit_event (action, (detail->>'file_name'));
-- Never lose an event for want of a partition; the retention run creates months ahead.
CREATE TABLE edi.audit_event_default PARTITION OF edi.audit_event DEFAULT;

-- The months 0014's events fall in, this one and the next three.
SELECT edi.ensure_month_partition('edi.audit_event', month)
  FROM (SELECT DISTINCT (at AT TIME ZONE 'UTC')::date AS month FROM edi.audit_event_0014
        UNION SELECT (now() AT TIME ZONE 'UTC' + make_interval(months => ahead))::date
          FROM generate_series(0, 3) AS ahead) AS months;
INSERT INTO edi.audit_event OVERRIDING SYSTEM VALUE SELECT * FROM edi.audit_event_0014;
SELECT setval(pg_get_serial_sequence('edi.audit_event', 'id'),
              coalesce((SELECT max(id) FROM edi.audit_event_0014), 1),
              (SELECT count(*) > 0 FROM edi.audit_event_0014));
DROP TABLE edi.audit_event_0014;

-- One row per log file read (its path as configured): the file's inode and how far it was
-- read, and the sftp sessions open at that point (pid -> account), whose later lines name
-- no account. Advanced in the transaction that records the events read, so a crash rereads
-- exactly what was not recorded.
CREATE TABLE edi.sftp_log_cursor (
    log_path   text        PRIMARY KEY,
    inode      bigint      NOT NULL,
    read_to    bigint      NOT NULL CHECK (read_to >= 0),
    sessions   jsonb       NOT NULL DEFAULT '{}',
    read_at    timestamptz NOT NULL DEFAULT now()
);
