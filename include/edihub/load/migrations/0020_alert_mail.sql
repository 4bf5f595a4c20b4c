-- The alerts' e-mail, recipient by recipient (edihub.alerts.mail): a row per alert and
-- recipient whose relay accepted the message that carried it. A retry after a refusal goes
-- only to the recipients without a row, and the latest sent_at is when an alert e-mail last
-- went out: a task's failure callback mails at once only after EDIHUB_ALERT_MAIL_MINUTES of
-- quiet, and leaves a burst's other alerts to the next digest. edi.alert.emailed_at is set
-- once every recipient has accepted the alert.
CREATE TABLE edi.alert_delivery (
    alert_id   bigint      NOT NULL REFERENCES edi.alert (id) ON DELETE CASCADE,
    recipient  text        NOT NULL,
    sent_at    timestamptz NOT NULL,  -- the hub's clock, as edi.alert's times
    message_id text        NOT NULL,
    PRIMARY KEY (alert_id, recipient)
);
CREATE INDEX alert_delivery_sent_at ON edi.alert_delivery (sent_at);
