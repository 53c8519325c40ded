"""Tenants, their API users and the API keys those users call the gateway with.

Django's own `auth.User` stays for staff who log into the admin; an `ApiUser`
is a consumer of the API inside one tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.core.validators import MaxValueValidator
from django.db import models
from django.dispatch import Signal
from django.utils import timezone

from core.names import name_validator

KEY_PREFIX = "llm_"
KEY_RE = re.compile(r"^llm_[0-9a-f]{32}$")
DISPLAY_PREFIX_LEN = 12  # "llm_" + 8 hex: enough to tell keys apart, useless to an attacker
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_raw_key() -> str:
    return KEY_PREFIX + secrets.token_hex(16)


# Sent with `digests`, the hashes of keys that must stop working at once (a key
# revoked, or the old secret of a rotated key): the key cache forgets them in
# every process (accounts.signals connects it). Saves and deletes are covered
# by Django's own post_save/post_delete.
key_hashes_retired = Signal()


class QuotaPeriod(models.TextChoices):
    TOTAL = "total", "Total"
    DAILY = "daily", "Daily"
    MONTHLY = "monthly", "Monthly"


# Explicit, so SQLite (64-bit integers) refuses what PostgreSQL could not store.
INT_RANGE = [MaxValueValidator(2**31 - 1)]
BIGINT_RANGE = [MaxValueValidator(2**63 - 1)]


class Limits(models.Model):
    """Quota, budget and rate-limit fields shared by tenants, users and keys.

    Empty means "no limit at this level"; every level that sets one applies.
    """

    token_quota = models.PositiveBigIntegerField(
        null=True, blank=True, validators=BIGINT_RANGE, help_text="Tokens per period."
    )
    budget_usd = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, help_text="USD per period."
    )
    quota_period = models.CharField(max_length=10, choices=QuotaPeriod.choices, default=QuotaPeriod.TOTAL)
    rpm = models.PositiveIntegerField(null=True, blank=True, validators=INT_RANGE, help_text="Requests per minute.")
    tpm = models.PositiveIntegerField(null=True, blank=True, validators=INT_RANGE, help_text="Tokens per minute.")

    class Meta:
        abstract = True


class Tenant(Limits):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiUser(Limits):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="users")
    username = models.CharField(max_length=100, validators=[name_validator])
    email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant__name", "username"]
        verbose_name = "API user"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "username"], name="unique_username_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.username} ({self.tenant.name})"


class ApiKeyQuerySet(models.QuerySet):
    def create_key(self, *, user: ApiUser, **fields) -> tuple[ApiKey, str]:
        """Create a key for `user`; return it with its plaintext, which is never stored."""
        raw = new_raw_key()
        key = self.create(
            user=user, tenant_id=user.tenant_id, key_hash=hash_key(raw), prefix=raw[:DISPLAY_PREFIX_LEN], **fields
        )
        return key, raw

    def verify(self, raw: str | None) -> ApiKey | None:
        """The usable key for a plaintext, or None. One query.

        None covers every refusal (malformed, unknown, revoked, expired,
        disabled user or tenant) so callers cannot leak which it was.
        """
        if not raw or not KEY_RE.match(raw):
            return None
        digest = hash_key(raw)
        key = self.select_related("tenant", "user").filter(key_hash=digest).first()
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            return None
        return key if key.is_usable() else None


class ApiKey(Limits):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="keys")
    user = models.ForeignKey(ApiUser, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=DISPLAY_PREFIX_LEN, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_admin = models.BooleanField(default=False, help_text="May manage its own tenant through the management API.")
    max_parallel = models.PositiveIntegerField(
        null=True, blank=True, validators=INT_RANGE, help_text="Concurrent requests at most."
    )
    allowed_models = models.JSONField(default=list, blank=True, help_text="Model names this key may use; empty = all.")
    expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or self.user.username})"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.is_active
            and (self.expires_at is None or self.expires_at > now)
            and self.user.is_active
            and self.tenant.is_active
        )

    def allows_model(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models

    def revoke(self) -> None:
        # Conditional update: a concurrent revoke keeps the first timestamp.
        now = timezone.now()
        ApiKey.objects.filter(pk=self.pk, is_active=True).update(is_active=False, revoked_at=now)
        self.is_active = False
        self.revoked_at = self.revoked_at or now
        key_hashes_retired.send(sender=ApiKey, digests=[self.key_hash])

    def rotate(self) -> str:
        """Give this key a new secret; the old one stops working at once."""
        raw = new_raw_key()
        old_hash = self.key_hash
        self.key_hash = hash_key(raw)
        self.prefix = raw[:DISPLAY_PREFIX_LEN]
        self.save(update_fields=["key_hash", "prefix"])
        key_hashes_retired.send(sender=ApiKey, digests=[old_hash])
        return raw

    def touch(self) -> None:
        """Record use, at most once a minute, so auth stays one read on the hot path."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
