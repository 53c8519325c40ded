"""Cost of a call from the price table: USD per 1M tokens, the admin's and
the config's prices over built-in defaults. Unknown model: cost 0."""

from __future__ import annotations

import functools
from decimal import Decimal

# USD per 1M tokens: input, output, cached input.
BUILTIN_PRICES: dict[str, tuple[float, float, float | None]] = {
    "gpt-5": (1.25, 10.00, 0.125),
    "gpt-5-mini": (0.25, 2.00, 0.025),
    "gpt-5-nano": (0.05, 0.40, 0.005),
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "gpt-4.1": (2.00, 8.00, 0.50),
    "gpt-4.1-mini": (0.40, 1.60, 0.10),
    "gpt-4.1-nano": (0.10, 0.40, 0.025),
    "gpt-4-turbo": (10.00, 30.00, None),
    "gpt-3.5-turbo": (0.50, 1.50, None),
    "o1": (15.00, 60.00, 7.50),
    "o3": (2.00, 8.00, 0.50),
    "o3-mini": (1.10, 4.40, 0.55),
    "o4-mini": (1.10, 4.40, 0.275),
    "text-embedding-3-small": (0.02, 0.0, None),
    "text-embedding-3-large": (0.13, 0.0, None),
    "text-embedding-ada-002": (0.10, 0.0, None),
    "claude-3-haiku": (0.25, 1.25, 0.03),
    "claude-3-5-haiku": (0.80, 4.00, 0.08),
    "claude-3-5-sonnet": (3.00, 15.00, 0.30),
    "claude-3-7-sonnet": (3.00, 15.00, 0.30),
    "claude-3-opus": (15.00, 75.00, 1.50),
    "claude-haiku-4-5": (1.00, 5.00, 0.10),
    "claude-sonnet-4": (3.00, 15.00, 0.30),
    "claude-sonnet-4-5": (3.00, 15.00, 0.30),
    "claude-opus-4": (15.00, 75.00, 1.50),
    "claude-opus-4-1": (15.00, 75.00, 1.50),
    "gemini-2.0-flash": (0.10, 0.40, 0.025),
    "gemini-2.5-flash": (0.30, 2.50, 0.075),
    "gemini-2.5-pro": (1.25, 10.00, 0.31),
    "gemini-2.5-flash-lite": (0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": (0.075, 0.30, None),
    "gemini-1.5-pro": (1.25, 5.00, None),
    "gemini-1.5-flash": (0.075, 0.30, None),
    "grok-3": (3.00, 15.00, 0.75),
    "grok-3-mini": (0.30, 0.50, 0.075),
    "grok-4": (3.00, 15.00, 0.75),
}
MILLION = 1_000_000


@functools.lru_cache(maxsize=1024)
def builtin_price(model: str) -> tuple[float, float, float | None] | None:
    """A built-in price by exact name, else by the longest known family a dated or
    suffixed name belongs to (`gpt-4o-2024-08-06` -> `gpt-4o`, `claude-3-5-sonnet-latest`)."""
    if model in BUILTIN_PRICES:
        return BUILTIN_PRICES[model]
    name = model.rsplit("/", 1)[-1]  # "openai/gpt-4o" style ids
    best = None
    for family in BUILTIN_PRICES:
        if (name == family or name.startswith(family + "-")) and (best is None or len(family) > len(best)):
            best = family
    return BUILTIN_PRICES[best] if best else None


def price_of(model: str, overrides: dict[str, dict]) -> tuple[float, float, float] | None:
    """(input, output, cached input) USD per 1M tokens, or None when unknown."""
    if model in overrides:
        p = overrides[model]
        return p["input"], p["output"], p["cached_input"] if p["cached_input"] is not None else p["input"]
    builtin = builtin_price(model)
    if builtin is None:
        return None
    return builtin[0], builtin[1], builtin[2] if builtin[2] is not None else builtin[0]


def cost_of(price: tuple[float, float, float], input_tokens: int, output_tokens: int, cached_tokens: int) -> Decimal:
    """USD for these tokens at a (input, output, cached input) price per 1M tokens."""
    uncached = max(0, input_tokens - cached_tokens)
    total = uncached * price[0] + cached_tokens * price[2] + output_tokens * price[1]
    return Decimal(str(round(total / MILLION, 8)))


def cost_usd(model: str, input_tokens: int, output_tokens: int, cached_tokens: int, overrides: dict) -> Decimal:
    price = price_of(model, overrides)
    return Decimal(0) if price is None else cost_of(price, input_tokens, output_tokens, cached_tokens)
