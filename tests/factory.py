"""Test data: a plain factory with make_* methods."""

from __future__ import annotations

from accounts.models import ApiKey, ApiUser, Tenant
from providers.models import Provider


class Factory:
    def make_tenant(self, name: str = "acme", **fields) -> Tenant:
        return Tenant.objects.create(name=name, **fields)

    def make_user(self, tenant: Tenant, username: str = "alice", **fields) -> ApiUser:
        return ApiUser.objects.create(tenant=tenant, username=username, **fields)

    def make_key(self, user: ApiUser, **fields) -> tuple[ApiKey, str]:
        return ApiKey.objects.create_key(user=user, **fields)

    def make_provider(self, name: str = "mock", type: str = "openai_compatible", **fields) -> Provider:
        fields.setdefault("models", ["gpt-4o-mini"])
        fields.setdefault("timeout", 5.0)
        fields.setdefault("max_retries", 0)
        return Provider.objects.create(name=name, type=type, **fields)


class World:
    """A tenant with an owner (admin key) and a member (client key), and an
    outsider tenant with its own admin, so every permission test has someone
    to refuse."""

    def __init__(self, factory: Factory) -> None:
        self.acme = factory.make_tenant("acme")
        self.owner = factory.make_user(self.acme, "owner")
        self.member = factory.make_user(self.acme, "member")
        self.owner_key, self.owner_raw = factory.make_key(self.owner, name="owner-admin", is_admin=True)
        self.member_key, self.member_raw = factory.make_key(self.member, name="member-client")

        self.globex = factory.make_tenant("globex")
        self.outsider = factory.make_user(self.globex, "outsider")
        self.outsider_key, self.outsider_raw = factory.make_key(self.outsider, name="outsider-admin", is_admin=True)
