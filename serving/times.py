"""How times are written for people: to the second, everywhere (CLI lines, tables, pages, reports)."""

from __future__ import annotations

from datetime import datetime

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def stamp(moment: datetime) -> str:
    """`2026-12-02 07:03:20`: a baseline of one minute no longer reads "02:14 to 02:14"."""
    return moment.strftime(TIME_FORMAT)
