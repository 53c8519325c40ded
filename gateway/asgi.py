"""ASGI entry point: `gateway.asgi:application`.

Client traffic (`/v1/*` and `/api/v1/generate`) goes to the lean async proxy
app; everything else (admin, management API, the `/v1` management paths) to Django.
"""

import gc
import os
import re

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Sets up Django (app registry) before anything imports models.
django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from alerts import scheduler as alert_scheduler  # noqa: E402
from gateway.consumer import V1Consumer  # noqa: E402
from gateway.endpoints import CLIENT_PATHS  # noqa: E402

# /v1 paths that are management views (Django), not client traffic.
MANAGEMENT_V1 = re.compile(r"/v1/(?:providers|config|rules|alerts)(?:/|$)")


class HttpDispatcher:
    """Client paths to the proxy app, the rest to Django. Plain prefix checks:
    this runs on every request, and a regex router was a visible share of it."""

    def __init__(self, proxy, django) -> None:
        self.proxy = proxy
        self.django = django
        self.evaluator_started = False

    def __call__(self, scope, receive, send):
        if not self.evaluator_started:
            # Daphne sends no lifespan: the alert evaluator starts with the first request.
            alert_scheduler.ensure_started()
            self.evaluator_started = True
        path = scope["path"]
        if (path.startswith("/v1/") and not MANAGEMENT_V1.match(path)) or path in CLIENT_PATHS:
            return self.proxy(scope, receive, send)
        return self.django(scope, receive, send)


application = ProtocolTypeRouter(
    {"http": HttpDispatcher(V1Consumer(), django_app), "lifespan": alert_scheduler.lifespan}
)

# What is loaded by now (Django, the app registry, our modules) lives as long as
# the process: moved out of the garbage collector's generations, so that its
# full collections scan only what requests allocate, not the whole framework.
gc.freeze()
