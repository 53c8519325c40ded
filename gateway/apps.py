from django.apps import AppConfig


class GatewayConfig(AppConfig):
    """The top layer as an app, for the commands that wire the others together
    (e.g. `bootstrap_demo`: a demo tenant and key and the echo provider)."""

    name = "gateway"
    verbose_name = "Gateway"
