"""Shared parts of the gateway's management commands."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must not be negative")
    return value


def usd(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be a non-negative amount")
    return value


def add_limit_arguments(parser) -> None:
    parser.add_argument("--token-quota", type=positive_int, help="tokens per period")
    parser.add_argument("--budget-usd", type=usd, help="USD per period")
    parser.add_argument("--rpm", type=positive_int, help="requests per minute")
    parser.add_argument("--tpm", type=positive_int, help="tokens per minute")


def limit_values(options: dict) -> dict:
    names = {"token_quota": "token_quota", "budget_usd": "budget_usd", "rpm": "rpm", "tpm": "tpm"}
    return {field: options[opt] for field, opt in names.items() if options.get(opt) is not None}


class GatewayCommand(BaseCommand):
    """A command whose bad input ends in one line on stderr and a non-zero exit."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # argparse prints the whole usage before its error; one line is easier to read in a script.
        parser.print_usage = lambda file=None: None
        return parser
