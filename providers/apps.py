from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"

    def ready(self) -> None:
        from core import metrics
        from providers import signals
        from providers.circuit import CircuitCollector

        signals.connect()
        metrics.register_collector(CircuitCollector())
