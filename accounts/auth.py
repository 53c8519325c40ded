"""Who is calling the management API: a presented key checked once.

The rules for a usable key live in one place, `ApiKey.objects.verify` (the
model's manager): `authenticate_key` here uses it for the DRF authentication
class (management API, where the bootstrap admin key is also accepted), and
the /v1 path's cached lookup (accounts.keycache) uses it on a cache miss.
`key_from_headers` reads the key from the headers both paths accept.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from accounts.models import ApiKey, Tenant

KEY_HEADERS = ("x-api-key", "x-service-key")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key, or the bootstrap admin key."""

    key: ApiKey | None
    global_admin: bool = False

    # Lets DRF and Django treat a Principal as `request.user`.
    is_authenticated = True
    is_anonymous = False

    @property
    def tenant(self) -> Tenant | None:
        return self.key.tenant if self.key else None

    @property
    def is_admin(self) -> bool:
        return self.global_admin or bool(self.key and self.key.is_admin)

    @property
    def is_staff(self) -> bool:
        return False

    def __str__(self) -> str:
        return "gateway-admin" if self.global_admin else str(self.key)


GLOBAL_ADMIN = Principal(key=None, global_admin=True)


def key_from_headers(get: Callable[[str], str | None]) -> str | None:
    """The presented key from `Authorization: Bearer`, `X-API-Key` or `X-Service-Key`.

    `get` looks a lower-case header name up and returns its value or None.
    """
    authorization = get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    for name in KEY_HEADERS:
        value = get(name)
        if value:
            return value.strip()
    return None


def is_bootstrap_admin_key(raw: str) -> bool:
    admin_key = settings.GATEWAY_ADMIN_KEY
    return bool(admin_key) and hmac.compare_digest(raw.encode(), admin_key.encode())


def authenticate_key(raw: str | None) -> Principal | None:
    """The caller for a presented key, or None when it must be refused (401)."""
    if not raw:
        return None
    if is_bootstrap_admin_key(raw):
        return GLOBAL_ADMIN
    key = ApiKey.objects.verify(raw)
    if key is None:
        return None
    key.touch()
    return Principal(key=key)
