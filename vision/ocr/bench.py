"""`lineinspect bench ocr`: accuracy and time per image of every reader, on real and rendered images.

Real sets (from ../shared/data, never copied into the repository):
- gaspump-7seg-lcd: integer litres shown on fuel-pump LCDs, exact match per quality group.
  The labels are the integer part of the reading, but about one fractional reading in five
  was labelled rounded up instead; both the strict figure and one that accepts either are
  reported. Development looked at the odd-indexed photos; even ones are reported apart.
- analog-gauges-reading: |value - reading| / span. The data gives each dial's range but not
  where its scale starts and ends: reported with the scale's ends found from the tick marks
  (the common 270-degree sweep, -135 to +135, where none are found), with that sweep for every
  dial, and with a per-dial calibration file when one is given.
- shipping-labels-waybill: the tracking ID found exactly (or, on NO_PATTERN, nothing found).
- sevenseg-digits: single digits cut from photos of two LCDs, read by the seven-segment line
  model with the margin the reader leaves around a display window (PAD, replicated border);
  an empty digit position must read as nothing.
Rendered sets (made by render_*.py from fixed seeds): label fields right and character error
rate, display readings exact and CER per family (render_display.FAMILIES; stock Tesseract beside
the plain ones), dial error / span per family (render_dial.FAMILIES, and full-circle scales).
Every set also reports the readers' own sureness (`status`): the share of readings given as
ok, how many of those are right (a dial within 2% of its span; a label whose every value
given is right), and how many were uncertain or unread.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

from vision.ocr.config import DialCalibration, DisplayProfile, load_gauge, load_template
from vision.ocr.dials import read_dial, value_at
from vision.ocr.image import encode_jpeg, encode_png
from vision.ocr.labels import read_label
from vision.ocr.metrics import char_error_rate
from vision.ocr.render_dial import render_dial
from vision.ocr.render_display import FAMILIES as DISPLAY_FAMILIES
from vision.ocr.render_display import crop_margin, family_reading, render_photo
from vision.ocr.render_label import LABEL_FAMILIES, LATIN_ONLY_FAMILIES, render_family
from vision.ocr.sevenseg import read_display

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SECTIONS = (
    "displays",
    "digit-crops",
    "dials",
    "waybills",
    "rendered-labels",
    "rendered-displays",
    "rendered-dials",
)

Progress = Callable[[str, int], None]  # (what, total) -> called once per item with total=0


def _timing(seconds: list[float]) -> dict:
    return {"mean_s": round(statistics.fmean(seconds), 4), "median_s": round(statistics.median(seconds), 4)}


def _rate(hits: int, n: int) -> dict:
    return {"right": hits, "of": n, "rate": round(hits / n, 4) if n else None}


def _status(outcomes: list[tuple[str, bool]]) -> dict:
    """(status, right) per reading -> the share given as ok, their accuracy, and the abstentions."""
    ok = [right for status, right in outcomes if status == "ok"]
    return {
        "ok": _rate(len(ok), len(outcomes)),
        "ok_right": _rate(sum(ok), len(ok)),
        "uncertain": sum(status == "uncertain" for status, _ in outcomes),
        "unread": sum(status == "unread" for status, _ in outcomes),
    }


def bench_gaspump(root: Path, tick: Progress) -> dict:
    folder = root / "gaspump-7seg-lcd"
    rows = list(csv.DictReader((folder / "DERIVED_subset_labels.csv").open(encoding="utf-8")))
    profile = load_gauge("fuel-pump-lcd")
    tick("gaspump displays", len(rows))
    per: dict[str, dict[str, list]] = {}
    seconds, misses, statuses = [], [], {}
    for i, row in enumerate(rows):
        result = read_display((folder / row["image_path"]).read_bytes(), profile)
        truth = int(row["used_liter"])
        value = result.value
        strict = value is not None and math.floor(value) == truth
        either = value is not None and truth in (math.floor(value), math.ceil(value))
        for key in (row["quality"], f"{row['quality']}-{'odd' if i % 2 else 'even'}", "all"):
            group = per.setdefault(key, {"strict": [], "either": []})
            group["strict"].append(strict)
            group["either"].append(either)
            statuses.setdefault(key, []).append((result.status, either))
        seconds.append(result.seconds)
        if not either:
            misses.append(
                {"image": row["image_path"], "truth": truth, "read": result.text, "status": result.status,
                 "reason": result.reason}
            )  # fmt: skip
        tick("gaspump displays", 0)
    groups = {
        key: {
            "integer_part": _rate(sum(g["strict"]), len(g["strict"])),
            "integer_part_or_rounded_up": _rate(sum(g["either"]), len(g["either"])),
            "status": _status(statuses[key]),
        }
        for key, g in sorted(per.items())
    }
    return {"groups": groups, "time": _timing(seconds), "misses": misses}


def bench_digit_crops(root: Path, tick: Progress, model: Path | None = None) -> dict:
    """Per-digit accuracy of the line model on the held-out real crops only (folder name = digit;
    11 = an empty position, which must read as nothing).

    The split (`digit_crops.real_crops`): per class folder, files sorted by name, odd positions
    may train the model (`train-digits --real`), even positions are held out and measured here.
    """
    from vision.ocr.digit_crops import SPLIT_RULE, padded_strip, real_crops
    from vision.ocr.sevenseg import MIN_CONFIDENCE, SURE, shape_doubt
    from vision.ocr.sevenseg_model import DEFAULT_MODEL, load_model, second_opinion, strip_input

    reader, second = load_model(model or DEFAULT_MODEL), second_opinion(model or DEFAULT_MODEL)
    crops = real_crops(root / "sevenseg-digits", "holdout")
    tick("digit crops", len(crops))
    per: dict[str, list[bool]] = {}
    statuses, seconds = [], []
    for path, truth in crops:
        start = time.perf_counter()
        strip = padded_strip(cv2.imread(str(path)))
        chars = [c for c in reader.read([strip_input(strip, True)])[0] if c.confidence >= MIN_CONFIDENCE]
        sure = all(c.confidence >= SURE for c in chars) and shape_doubt(reader, second, strip, True, chars) is None
        seconds.append(time.perf_counter() - start)
        right = "".join(c.char for c in chars) == truth
        per.setdefault(truth or "empty", []).append(right)
        statuses.append(("ok" if sure else "uncertain", right))
        tick("digit crops", 0)
    every = [r for rights in per.values() for r in rights]
    return {
        "part": "holdout",
        "split": SPLIT_RULE,
        "digits": _rate(sum(every), len(every)),
        "per_digit": {k: _rate(sum(v), len(v)) for k, v in sorted(per.items())},
        "status": _status(statuses),
        "time": _timing(seconds),
    }


def _dial_errors(results: list[tuple[float | None, float, float]]) -> dict:
    """(value read or None, truth, span) -> error statistics; a refusal counts as a full span."""
    read = [abs(v - t) / s for v, t, s in results if v is not None]
    counted = read + [1.0] * (len(results) - len(read))
    return {
        "dials": len(results),
        "read": len(read),
        "median_error_of_span": round(float(np.median(counted)), 4) if counted else None,
        "p90_error_of_span": round(float(np.percentile(counted, 90)), 4) if counted else None,
        "median_error_of_span_read_only": round(float(np.median(read)), 4) if read else None,
        "within_2pct": sum(e <= 0.02 for e in read),
    }


def _per_dial(path: Path) -> dict[str, dict]:
    """A YAML mapping image name -> calibration keys (angles; the values come from the data set)."""
    import yaml

    from annotation.errors import LineInspectError

    if not path.is_file():
        raise LineInspectError(f"dial calibrations file not found: {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise LineInspectError(f"{path}: expected image name -> {{min_angle: .., max_angle: ..}} (or points)")
    return raw


def bench_analog(root: Path, tick: Progress, calibrations: Path | None = None) -> dict:
    folder = root / "analog-gauges-reading" / "dataset" / "eval"
    entries = [
        e
        for e in json.loads((folder / "gauge_info_eval.json").read_text())
        if (folder / "images" / e["image"]).is_file()
    ]
    per_dial = _per_dial(calibrations) if calibrations else {}
    tick("analog dials", len(entries))
    fixed, found, calibrated, seconds, reads, statuses = [], [], [], [], [], []
    for entry in entries:
        lo, hi, truth = float(entry["min"]), float(entry["max"]), float(entry["reading"])
        data = (folder / "images" / entry["image"]).read_bytes()
        values_only = DialCalibration(min_value=lo, max_value=hi)  # ends found on the dial, else the 270 sweep
        result = read_dial(data, values_only)
        at_270 = value_at(values_only, result.angle)[0] if result.angle is not None else None  # same needle
        fixed.append((at_270, truth, hi - lo))
        found.append((result.value, truth, hi - lo))
        seconds.append(result.seconds)
        error = abs(result.value - truth) / (hi - lo) if result.value is not None else None
        reads.append(
            {"image": entry["image"], "truth": truth, "read": result.value, "error_of_span": error,
             "status": result.status}
        )  # fmt: skip
        statuses.append((result.status, error is not None and error <= 0.02))
        if entry["image"] in per_dial:
            keys = per_dial[entry["image"]]
            own = DialCalibration(**keys) if "points" in keys else DialCalibration(min_value=lo, max_value=hi, **keys)
            calibrated.append((read_dial(data, own).value, truth, hi - lo))
        tick("analog dials", 0)
    report = {
        "default_270_sweep": _dial_errors(fixed),
        "scale_from_ticks": _dial_errors(found),
        "status": _status(statuses),
        "time": _timing(seconds),
        "reads": reads,
    }
    if calibrated:
        report["per_dial_calibration"] = _dial_errors(calibrated)
    return report


def bench_waybills(root: Path, engines: Iterable[str], tick: Progress) -> dict:
    folder = root / "shipping-labels-waybill" / "data"
    truth = {
        r["image_name"]: r["target_text"] for r in csv.DictReader((folder / "ground_truth.csv").open(encoding="utf-8"))
    }
    images = sorted((folder / "test_images").glob("*.jpg"))
    template = load_template("shipping")
    out = {}
    for engine in engines:
        tick(f"waybills ({engine})", len(images))
        hits, seconds, reads, statuses = 0, [], [], []
        for path in images:
            result = read_label(path.read_bytes(), template, engine=engine)
            found = result.fields["tracking_id"].value
            expected = truth[path.name]
            right = found == (None if expected == "NO_PATTERN" else expected)
            hits += right
            statuses.append((result.status, right))
            seconds.append(result.seconds)
            reads.append({"image": path.name, "truth": expected, "read": found})
            tick(f"waybills ({engine})", 0)
        out[engine] = {
            "tracking_id": _rate(hits, len(images)),
            "status": _status(statuses),
            "time": _timing(seconds),
            "reads": reads,
        }
    return out


def _squash(text: str) -> str:
    return " ".join(text.split())


def rendered_label_cases(family: str, n: int, seed: int = 0) -> list[tuple[int, bool]]:
    """(seed, korean) of the family's labels: every other one Korean where the family's fonts have Hangul."""
    korean = family not in LATIN_ONLY_FAMILIES
    return [(s, korean and s % 2 == 1) for s in range(seed, seed + n)]


def bench_rendered_labels(
    n: int, engines: Iterable[str], tick: Progress, families: Iterable[str] = LABEL_FAMILIES, seed: int = 0
) -> dict:
    """Per engine and family: labels with every field right, fields right, character error rate, time."""
    families = list(families)
    out: dict = {}
    for engine in engines:
        tick(f"rendered labels ({engine})", n * len(families))
        out[engine] = {}
        for family in families:
            all_right, fields_right, fields, pairs, seconds, wrong = {False: 0, True: 0}, 0, 0, [], [], []
            statuses = []
            cases = rendered_label_cases(family, n, seed)
            for label_seed, korean in cases:
                label = render_family(family, label_seed, korean)
                template = load_template("default-ko" if korean else "default")
                result = read_label(encode_png(label.image), template, engine=engine)
                got = {name: f.value for name, f in result.fields.items()}
                right = sum(got[k] == v for k, v in label.fields.items())
                fields_right += right
                fields += len(label.fields)
                all_right[korean] += right == len(label.fields)
                given_right = all(got[k] in (v, None) for k, v in label.fields.items())  # what the reading claims
                statuses.append((result.status, given_right))
                if right < len(label.fields):
                    misread = {k: [v, got[k]] for k, v in label.fields.items() if got[k] != v}
                    wrong.append({"seed": label_seed, "korean": korean, "wrong": misread})
                pairs.append((_squash(result.text), _squash(" ".join(label.lines))))
                seconds.append(result.seconds)
                tick(f"rendered labels ({engine})", 0)
            korean_n = sum(k for _, k in cases)
            out[engine][family] = {
                "labels_all_fields_right": _rate(all_right[False] + all_right[True], n),
                "english": _rate(all_right[False], n - korean_n),
                "korean": _rate(all_right[True], korean_n),
                "fields_right": _rate(fields_right, fields),
                "char_error_rate": round(char_error_rate(pairs), 4),
                "status": _status(statuses),
                "time": _timing(seconds),
                "wrong": wrong,
            }
    return out


def bench_rendered_displays(n: int, tick: Progress, baseline: bool = True) -> dict:
    """Per display family (render_display.FAMILIES), n photos of seeds 0..n-1, and the same photos cropped to the
    display (`cropped`: as a fixed camera's region would be, `crop_margin`); stock Tesseract beside the plain ones.
    The two-row family's top row is read as its gauge config would ask for it (`row: 1`)."""
    report = {}
    for family in DISPLAY_FAMILIES:
        profile = DisplayProfile(row=1) if family == "two-row" else None
        tick(f"rendered displays: {family}", 2 * n)
        found, cropped, base_pairs = _Reads(), _Reads(), []
        for seed in range(n):
            text = family_reading(np.random.default_rng(10_000 + seed), family)
            photo, _ = render_photo(text, seed=seed, family=family)
            found.add(read_display(encode_jpeg(photo, 90), profile), text)
            crop, _ = render_photo(text, seed=seed, family=family, crop=crop_margin(seed))
            cropped.add(read_display(encode_jpeg(crop, 90), profile), text)
            if baseline and family == "plain":
                base_pairs.append((_stock_tesseract(photo), text))
            tick(f"rendered displays: {family}", 0)
        report[family] = {**found.report(), "cropped": cropped.report()}
        if base_pairs:
            report[family]["stock_tesseract"] = {
                "exact": _rate(sum(a == b for a, b in base_pairs), n),
                "char_error_rate": round(char_error_rate(base_pairs), 4),
            }
    return report


class _Reads:
    """Display readings against their truths, summed up as bench_rendered_displays reports them."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []
        self.statuses: list[tuple[str, bool]] = []
        self.seconds: list[float] = []

    def add(self, result, text: str) -> None:
        self.pairs.append((result.text, text))
        self.statuses.append((result.status, result.text == text))
        self.seconds.append(result.seconds)

    def report(self) -> dict:
        return {
            "exact": _rate(sum(a == b for a, b in self.pairs), len(self.pairs)),
            "char_error_rate": round(char_error_rate(self.pairs), 4),
            "status": _status(self.statuses),
            "time": _timing(self.seconds),
        }


def _stock_tesseract(photo: np.ndarray) -> str:
    """Tesseract given its best chance: the display found and straightened, digits whitelisted."""
    import cv2
    import pytesseract

    from vision.ocr.displays import find_displays, straighten

    found = find_displays(photo)
    strip = straighten(photo, found[0].corners)[0] if found else photo
    gray = cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY)
    text = pytesseract.image_to_string(gray, config="--psm 7 -c tessedit_char_whitelist=0123456789.-")
    return "".join(text.split())


def rendered_dial_cases(n: int) -> list[tuple[DialCalibration, float]]:
    """Linear sweeps of 270, 180 and 300 degrees and a non-linear three-point scale."""
    scales = [
        DialCalibration(min_angle=-135, max_angle=135, min_value=0, max_value=10, unit="bar"),
        DialCalibration(min_angle=-90, max_angle=90, min_value=0, max_value=100, unit="%"),
        DialCalibration(min_angle=-150, max_angle=150, min_value=-20, max_value=120, unit="C"),
        DialCalibration(points=[{"angle": -135, "value": 0}, {"angle": 0, "value": 1}, {"angle": 135, "value": 10}]),
    ]
    rng = np.random.default_rng(7)
    cases = []
    for i in range(n):
        cal = scales[i % len(scales)]
        lo, hi = sorted((cal.points[0].value, cal.points[-1].value))
        cases.append((cal, float(rng.uniform(lo, hi))))
    return cases


FULL_CIRCLE = DialCalibration(min_angle=0, max_angle=360, min_value=0, max_value=10)
# family -> (how it is drawn, whether it carries FULL_CIRCLE's scale instead of rendered_dial_cases')
DIAL_FAMILIES = {
    "plain": ("plain", False),
    "small": ("small", False),
    "full-circle": ("plain", True),
    "thin-needle": ("thin-needle", False),
    "second-pointer": ("second-pointer", False),
    "meter-subdial": ("meter-subdial", True),
}


def rendered_family_cases(family: str, n: int) -> list[tuple[DialCalibration, float]]:
    """The family's n (calibration, value) cases: rendered_dial_cases, or values around the full circle."""
    if not DIAL_FAMILIES[family][1]:
        return rendered_dial_cases(n)
    rng = np.random.default_rng(11)
    return [(FULL_CIRCLE, float(rng.uniform(0, 10))) for _ in range(n)]


def bench_rendered_dials(n: int, tick: Progress) -> dict:
    """Per family (DIAL_FAMILIES), n dials from seeds 0..n-1; a second pointer's dial names its needle."""
    report = {}
    for family, (drawn, _) in DIAL_FAMILIES.items():
        tick(f"rendered dials: {family}", n)
        outcomes, seconds, statuses = [], [], []
        for seed, (cal, value) in enumerate(rendered_family_cases(family, n)):
            dial = render_dial(value, cal, seed, family=drawn)
            read_as = cal.model_copy(update={"needle": dial.needle}) if family == "second-pointer" else cal
            result = read_dial(encode_jpeg(dial.image, 90), read_as)
            outcomes.append((result.value, value, cal.span))
            right = result.value is not None and abs(result.value - value) <= 0.02 * cal.span
            statuses.append((result.status, right))
            seconds.append(result.seconds)
            tick(f"rendered dials: {family}", 0)
        report[family] = {**_dial_errors(outcomes), "status": _status(statuses), "time": _timing(seconds)}
    return report


def run_bench(
    data: Path = DEFAULT_DATA,
    sections: Iterable[str] = SECTIONS,
    engines: Iterable[str] = ("pytesseract",),
    rendered: int = 40,
    dial_calibrations: Path | None = None,
    tick: Progress = lambda what, total: None,
    families: Iterable[str] = LABEL_FAMILIES,
    per_family: int = 10,
    label_seed: int = 0,
    digit_model: Path | None = None,
) -> dict:
    """Every requested section; the report is JSON-ready. `digit_model` reads the digit crops in place of the
    shipped seven-segment model."""
    start = time.perf_counter()
    engines = list(engines)
    report: dict = {"data": str(data)}
    for section in sections:
        if section == "displays":
            report[section] = bench_gaspump(data, tick)
        elif section == "digit-crops":
            report[section] = bench_digit_crops(data, tick, digit_model)
        elif section == "dials":
            report[section] = bench_analog(data, tick, dial_calibrations)
        elif section == "waybills":
            report[section] = bench_waybills(data, engines, tick)
        elif section == "rendered-labels":
            report[section] = bench_rendered_labels(per_family, engines, tick, families, label_seed)
        elif section == "rendered-displays":
            report[section] = bench_rendered_displays(rendered, tick)
        elif section == "rendered-dials":
            report[section] = bench_rendered_dials(rendered, tick)
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report
