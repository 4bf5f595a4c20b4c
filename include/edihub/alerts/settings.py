"""The alerts' thresholds, from the environment, with defaults for a hub the size of the CSM's."""

from __future__ import annotations

from dataclasses import dataclass

from edihub.config import env_fields


@dataclass(frozen=True)
class AlertSettings:
    """What raises an alert, and who hears of it.

    recipients          EDIHUB_ALERT_EMAILS           the integration team (comma-separated)
    mail_minutes        EDIHUB_ALERT_MAIL_MINUTES     a task's failure is mailed at once unless
                                                      an alert e-mail went out this recently
                                                      (then the next digest carries it)
    sender_hour         EDIHUB_ALERT_SENDER_HOUR      a daily sender has sent by this hour
                                                      (Monaco time, 0-23)...
    sender_history_days EDIHUB_ALERT_SENDER_HISTORY_DAYS  ...daily: it sent on at least
    sender_usual_percent EDIHUB_ALERT_SENDER_USUAL_PERCENT  this share of these past days
                                                      (and on most of the same weekdays)
    pull_days           EDIHUB_ALERT_PULL_DAYS        an insurer pulls a published file within
                                                      this many days...
    pull_window_days    EDIHUB_ALERT_PULL_WINDOW_DAYS ...of the files published in this window
                                                      (older ones have left its folder)
    rejection_min_files EDIHUB_ALERT_REJECTION_MIN_FILES  a feed's day counts from this many
                                                      decided files (one bad file of three
                                                      pages nobody)...
    rejection_jump_points EDIHUB_ALERT_REJECTION_JUMP_POINTS  ...and alerts when its share of
                                                      rejected files is this many points above
                                                      the trailing history's
    rejection_history_days EDIHUB_ALERT_REJECTION_HISTORY_DAYS  that history, in days
    export_late_minutes EDIHUB_ALERT_EXPORT_LATE_MINUTES  an export unpublished this long after
                                                      its due time (registry export_time)
    """

    recipients: tuple[str, ...] = ("integration@edihub.invalid",)
    mail_minutes: int = 5
    sender_hour: int = 10
    sender_history_days: int = 28
    sender_usual_percent: int = 80
    pull_days: int = 3
    pull_window_days: int = 30
    rejection_min_files: int = 10
    rejection_jump_points: int = 20
    rejection_history_days: int = 28
    export_late_minutes: int = 60

    def __post_init__(self) -> None:
        if not 0 <= self.sender_hour <= 23:
            raise ValueError(f"EDIHUB_ALERT_SENDER_HOUR must be 0-23, not {self.sender_hour}")
        if self.mail_minutes < 0:
            raise ValueError(f"EDIHUB_ALERT_MAIL_MINUTES must be >= 0, not {self.mail_minutes}")
        if not self.recipients:
            raise ValueError("EDIHUB_ALERT_EMAILS names nobody: alerts must reach someone")

    @classmethod
    def from_env(cls) -> AlertSettings:
        return cls(**env_fields(cls, "EDIHUB_ALERT_", names={"recipients": "EDIHUB_ALERT_EMAILS"}))
