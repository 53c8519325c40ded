"""One row per client call, success or not. Lean on purpose: no prompt text,
no JSON blobs; ids rather than foreign keys so writing never joins or locks."""

from __future__ import annotations

from django.db import models


class UsageRecord(models.Model):
    created_at = models.DateTimeField(db_index=True)
    # Unique: batches may be written twice after a crash; the second write is ignored.
    request_id = models.CharField(max_length=40, unique=True)
    tenant_id = models.BigIntegerField(null=True)
    user_id = models.BigIntegerField(null=True)
    key_id = models.BigIntegerField(null=True)
    username = models.CharField(max_length=100, blank=True)
    service = models.CharField(max_length=100, blank=True)
    task_type = models.CharField(max_length=100, blank=True)
    endpoint = models.CharField(max_length=40)
    requested_model = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    upstream_model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0, help_text="Of the input: read from the prompt cache.")
    cache_write_tokens = models.PositiveIntegerField(default=0, help_text="Of the input: written to the prompt cache.")
    reasoning_tokens = models.PositiveIntegerField(default=0, help_text="Of the output: reasoning.")
    # An agent's session (X-Session-Id, X-Claude-Code-Session-Id, a Responses prompt_cache_key).
    session_id = models.CharField(max_length=200, blank=True)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    priced = models.BooleanField(default=True, help_text="False when the model had no known price (cost 0).")
    latency_ms = models.PositiveIntegerField(default=0)
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=40, blank=True)
    cached = models.BooleanField(default=False)
    stream = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    disconnected = models.BooleanField(default=False, help_text="Client went away; output is what was sent.")
    estimated = models.BooleanField(default=False, help_text="Token counts estimated, not reported by upstream.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant_id", "created_at"]),
            models.Index(fields=["user_id", "created_at"]),
            models.Index(fields=["key_id", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.endpoint} {self.status}"
