"""Pieces shared by management commands."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import CommandError, CommandParser

from apps.common import clock


def interval_option_add(parser: CommandParser) -> None:
    parser.add_argument("--interval", help="Interval start, ISO 8601 UTC, e.g. 2026-11-23T08:00:00Z.")


def interval_option_parse(value: str | None) -> dt.datetime | None:
    """The ``--interval`` instant, or None; a malformed one is a clear command error."""
    if value is None:
        return None
    try:
        return clock.parse_instant(value)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
