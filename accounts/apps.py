from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Tenants, users and API keys"

    def ready(self) -> None:
        from accounts import signals

        signals.connect()
