-- The audit trail, on by default: every registry change, reprocess, quarantine release,
-- purge and partner download, who did it and when, in one queryable table.
-- actor: the person or account (an OS user for the CLI, an Airflow user for the UI, a partner's
-- SFTP account for a download, 'edihub' for the hub's own scheduled work).
-- action: a dotted verb from a fixed vocabulary (partner.add, file.reprocess, export.download,
-- retention.purge, ...); subject: what it acted on (a partner id, a file id, a path);
-- detail: the rest, as the action defines it.
CREATE TABLE edi.audit_event (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    action   text        NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    subject  text        NOT NULL,
    detail   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_event_subject ON edi.audit_event (subject, at);
CREATE INDEX audit_event_action ON edi.audit_event (action, at);
