"""Generated inspection record streams with known shifts, written into a service's database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np

from serving.monitor.lines import evaluate, store_alarms
from serving.records.database import Database
from serving.records.lines import BaselinePeriod
from serving.records.model import InspectionRecord
from serving.settings import MonitorSettings

THRESHOLD = 0.5


def records(
    line: str, start: datetime, rates: list[float], size: int, seed: int, camera: str = "cam-1",
    brightness: list[float] | None = None, step: timedelta = timedelta(seconds=1),
) -> list[InspectionRecord]:  # fmt: skip
    """`len(rates)` subgroups of `size` records one `step` apart; subgroup i has defect rate rates[i] (defects
    score about 0.9, normal parts about 0.1) and image brightness around brightness[i] (default 120)."""
    rng = np.random.default_rng(seed)
    made, t = [], start
    for i, rate in enumerate(rates):
        defect = rng.random(size) < rate
        scores = np.clip(np.where(defect, rng.normal(0.9, 0.05, size), rng.normal(0.1, 0.05, size)), 0, 1)
        light = rng.normal(brightness[i] if brightness else 120.0, 4.0, size)
        for d, score, b in zip(defect, scores, light, strict=True):
            made.append(
                InspectionRecord(
                    id=uuid4().hex,
                    created_at=t,
                    line=line,
                    camera=camera,
                    image_bytes=1000,
                    threshold=THRESHOLD,
                    score=float(score),
                    verdict="defect" if d else "normal",
                    brightness=float(b),
                    contrast=float(rng.normal(40, 2)),
                    sharpness=float(rng.normal(900, 40)),
                )  # fmt: skip
            )
            t += step
    return made


def write(database_url: str, made: list[InspectionRecord]) -> None:
    db = Database(database_url)
    try:
        db.insert_inspections(made)
    finally:
        db.close()


def hours_ago(hours: float) -> datetime:
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)


def replay(db: Database, period: BaselinePeriod, made: list[InspectionRecord], size: int, every: int = 1) -> None:
    """Evaluate the line and store its alarms each time `every` subgroups of `size` records of `made` (already in
    `db`, the baseline's first) complete after the baseline, as the service does while they arrive. (Signals depend
    only on the subgroups up to theirs, and new ones are grouped in subgroup order, so `every` changes only the
    time this takes, not the alarms.)"""
    settings, cache = MonitorSettings(), {}
    after = [r.created_at for r in made if r.created_at >= period.until]
    complete = len(after) // size
    for k in range(every, complete + every, every):
        last = after[min(k, complete) * size - 1]
        store_alarms(db, evaluate(db, period, settings, last + timedelta(microseconds=1), cache))
