"""Command-line arguments the operations commands share: which stack, where, and which system in it."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from tapstack.operations.deployed import valid_stack_name
from tapstack.props import PREFIX_PATTERN


def stack_name(text: str) -> str:
    if not valid_stack_name(text):
        raise argparse.ArgumentTypeError(f"expected a stack name (a letter, then letters, digits, -), got {text!r}")
    return text


def prefix(text: str) -> str:
    if not PREFIX_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"expected PascalCase letters and digits, up to 20, got {text!r}")
    return text


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text!r}")
        return int(text)

    return parse


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """``--stack``, ``--region`` and ``--prefix``, as ``doctor`` takes them."""
    parser.add_argument("--stack", required=True, type=stack_name, help="the stack's name (or stack ID)")
    parser.add_argument("--region", help="its region (default: AWS_REGION or your profile's)")
    parser.add_argument(
        "--prefix", default="", type=prefix, help="ReminderProps.prefix of a system in a host stack (default none)"
    )
