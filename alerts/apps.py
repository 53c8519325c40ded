import math

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        checks.register(check_evaluation_interval)


def check_evaluation_interval(app_configs, **kwargs) -> list[checks.CheckMessage]:
    # env_float takes any number; only 0 (off) and finite positive intervals mean something.
    seconds = settings.ALERT_EVALUATION_SECONDS
    if seconds == 0 or 0 < seconds < math.inf:
        return []
    return [
        checks.Error(
            f"ALERT_EVALUATION_SECONDS={seconds!r} is not a number of seconds (0 turns evaluation off).",
            id="alerts.E001",
        )
    ]
