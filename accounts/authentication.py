from __future__ import annotations

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.auth import authenticate_key, key_from_headers


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication by gateway API key (any of the three headers).

    No key presented: returns None so session auth (staff in the browsable
    API) can still apply. A key presented but refused: 401, whatever the reason.
    """

    def authenticate(self, request):
        raw = key_from_headers(lambda name: request.headers.get(name))
        if raw is None:
            return None
        principal = authenticate_key(raw)
        if principal is None:
            raise AuthenticationFailed()
        return principal, principal

    def authenticate_header(self, request) -> str:
        # Its presence makes DRF answer 401 (not 403) to unauthenticated calls.
        return "Bearer"
