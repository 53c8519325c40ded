"""ASGI entry point: `gateway.asgi:application`.

Client traffic (`/v1/*` and `/api/v1/generate`) goes to the lean async proxy
app; everything else (admin, management API, the `/v1` management paths) to Django.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Sets up Django (app registry) before anything imports models.
django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from gateway.consumer import V1Consumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                re_path(r"^v1/(?:providers|config|rules|alerts)(?:/|$)", django_app),
                re_path(r"^(?:v1/|api/v1/generate$)", V1Consumer()),
                re_path(r"", django_app),
            ]
        )
    }
)
