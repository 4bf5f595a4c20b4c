-- Alerts for the integration team: a task that failed for good, a daily sender gone quiet, an
-- insurer not pulling its files, a feed's rejection rate jumping, an export late past its due
-- time. One row per occurrence of a condition: opened when the condition is first seen,
-- e-mailed once, closed when it clears (closed_at, close_reason); a later occurrence is a new
-- row. Times are the hub's clock (edihub.clock), as the checks see them.
-- kind: which check; key: the condition within it (a sender, an insurer, a feed,
-- 'INS01/2026-11-30', 'dag.task'); detail: what the check saw, refreshed on every run.
CREATE TABLE edi.alert (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('task_failed', 'sender_silent',
                       'insurer_not_pulling', 'rejection_jump', 'export_late')),
    key            text        NOT NULL,
    summary        text        NOT NULL,
    detail         jsonb       NOT NULL DEFAULT '{}',
    opened_at      timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    seen_count     integer     NOT NULL DEFAULT 1,
    closed_at      timestamptz,
    close_reason   text,
    emailed_at     timestamptz,            -- NULL: not yet e-mailed (the alerts DAG retries)
    email_attempts integer     NOT NULL DEFAULT 0,
    email_error    text,
    CHECK ((closed_at IS NULL) = (close_reason IS NULL))
);
-- One open alert per condition, whoever opens it (a check, a task's failure callback).
CREATE UNIQUE INDEX alert_open ON edi.alert (kind, key) WHERE closed_at IS NULL;
CREATE INDEX alert_opened_at ON edi.alert (opened_at);
CREATE INDEX alert_unmailed ON edi.alert (opened_at) WHERE emailed_at IS NULL;
