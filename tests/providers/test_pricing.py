from decimal import Decimal

import pytest

from providers.pricing import builtin_price, cost_usd, price_of


@pytest.mark.parametrize(
    "model,family",
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("grok-3-mini", "grok-3-mini"),
    ],
)
def test_dated_and_suffixed_names_find_their_family(model, family):
    from providers.pricing import BUILTIN_PRICES

    assert builtin_price(model) == BUILTIN_PRICES[family]


def test_unknown_model_has_no_price_and_costs_zero():
    assert builtin_price("my-private-model") is None
    assert builtin_price("gpt-4oops") is None  # a family needs a "-" boundary
    assert cost_usd("my-private-model", 1000, 1000, 0, {}) == Decimal(0)


def test_cached_input_tokens_are_billed_at_their_own_price():
    # gpt-4o-mini: 0.15 input, 0.60 output, 0.075 cached input per 1M tokens
    cost = cost_usd("gpt-4o-mini", 1_000_000, 1_000_000, 400_000, {})
    assert cost == Decimal(str(round(600_000 * 0.15 / 1e6 + 400_000 * 0.075 / 1e6 + 0.60, 8)))


def test_configured_price_overrides_builtin():
    overrides = {"gpt-4o-mini": {"input": 1.0, "output": 2.0, "cached_input": None}}
    assert price_of("gpt-4o-mini", overrides) == (1.0, 2.0, 1.0)
    assert cost_usd("gpt-4o-mini", 1_000_000, 0, 0, overrides) == Decimal("1.0")
