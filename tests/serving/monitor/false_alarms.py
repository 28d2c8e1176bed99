"""False alarms on a stable line: stable record streams at the baseline's defect rate, replayed through the line
monitoring (charts, drift, alarms grouped by event) into a real SQLite file; every alarm after the baseline is false.

    .venv/bin/python -m tests.serving.monitor.false_alarms [--lines 10] [--subgroups 100] [--size 200] [--p 0.05]

Each line has its own baseline of 20 subgroups, so the figure includes what estimating limits from a baseline costs.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from serving.records.alarms import list_alarms
from serving.records.database import Database
from serving.records.lines import BaselinePeriod
from tests.serving.monitor.streams import hours_ago, records, replay

BASELINE = 20  # subgroups


@dataclass(frozen=True)
class FalseAlarms:
    parts: int  # stable parts after the baselines
    subgroups: int
    alarms: int  # as the service raises them: one per event
    rules: int  # the rules those alarms list (what one alarm per rule would have raised)

    def __str__(self) -> str:
        per_1000, per_subgroup = 1000 * self.alarms / self.parts, self.alarms / self.subgroups
        return (
            f"{self.parts} stable parts in {self.subgroups} subgroups: {self.alarms} alarms listing "
            f"{self.rules} rules; {per_1000:.3f} alarms per 1000 parts, {per_subgroup:.4f} per subgroup "
            f"(one in {self.subgroups / max(self.alarms, 1):.0f})"
        )


def measure(db: Database, lines: int, subgroups: int, size: int, p: float) -> FalseAlarms:
    """`lines` lines (seeds 0, 1, ...), each a baseline then `subgroups` stable subgroups of `size` parts."""
    for seed in range(lines):
        line, start = f"L-stable-{seed}", hours_ago((BASELINE + subgroups) * size / 3600 + 1)  # a part a second
        made = records(line, start, [p] * (BASELINE + subgroups), size, seed)
        db.insert_inspections(made)
        until = start + timedelta(seconds=BASELINE * size)
        replay(db, BaselinePeriod(line, start, until, size, None, datetime.now(UTC)), made, size, every=10)
    raised = list_alarms(db, limit=10**9)
    return FalseAlarms(lines * subgroups * size, lines * subgroups, len(raised), sum(len(a.rules) for a in raised))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--subgroups", type=int, default=100, help="stable subgroups per line after its baseline")
    parser.add_argument("--size", type=int, default=200, help="parts per subgroup")
    parser.add_argument("--p", type=float, default=0.05, help="the defect rate, baseline and after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'lineinspect.db'}")
        db.migrate()
        print(measure(db, args.lines, args.subgroups, args.size, args.p))
        db.close()


if __name__ == "__main__":
    main()
