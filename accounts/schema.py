"""How the OpenAPI document (drf-spectacular) describes the gateway's key
authentication: one key, sent in any of the three headers the gateway accepts
(CONTRACT section 2), so the three schemes are alternatives (OR), not a set.

Registered by being imported: accounts.api imports it, and every schema
generation walks the URLconf, which imports accounts.api.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = ["bearerKey", "apiKeyHeader", "serviceKeyHeader"]

    def get_security_definition(self, auto_schema) -> list[dict]:
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A gateway API key (`llm_` + 32 hex characters) or GATEWAY_ADMIN_KEY.",
            },
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            {"type": "apiKey", "in": "header", "name": "X-Service-Key"},
        ]

    def get_security_requirement(self, auto_schema) -> list[dict]:
        return [{name: []} for name in self.name]
