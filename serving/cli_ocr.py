"""`lineinspect ocr label|gauge|train-digits` and `lineinspect bench ocr`: the OCR commands.

Reading needs no torch; only `train-digits` imports it. Each reading prints one line per
image (stdout) and, with --json, every detail (words, boxes, confidences) to a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from annotation.errors import LineInspectError
from serving.cli_serve import bench_app

console = Console(stderr=True)
ocr_app = typer.Typer(help="Read labels, digital displays and analog dials.", no_args_is_help=True)

Images = Annotated[list[Path], typer.Argument(help="Image files.")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write every result, in full, to this JSON file.")]
Engine = Annotated[
    str,
    typer.Option(
        help="pytesseract (Tesseract, a process per call), tesserocr (Tesseract in-process) or rapidocr "
        "(PP-OCR on ONNX Runtime: Latin and Chinese only; `make setup` installs it)."
    ),
]


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise LineInspectError(f"image not found: {path}")
    return path.read_bytes()


def _write_json(path: Path | None, results: list[tuple[Path, dict]]) -> None:
    if path:
        path.write_text(
            json.dumps([{"image": str(p), **r} for p, r in results], indent=1, ensure_ascii=False), encoding="utf-8"
        )
        console.print(f"wrote {path}")


@ocr_app.command("label")
def ocr_label(
    images: Images,
    template: Annotated[str, typer.Option(help="Template name in configs/ocr/labels/, or a YAML path.")] = "default",
    engine: Engine = "pytesseract",
    psm: Annotated[int | None, typer.Option(help="Force a Tesseract page-segmentation mode.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Read product or shipping labels: text, word boxes and the template's fields. Exits 1 when a
    required field is missing or invalid on any image."""
    from vision.ocr import load_template, read_label
    from vision.ocr.tesseract import limit_openmp

    limit_openmp()
    spec = load_template(template)
    results, failed = [], 0
    for path in images:
        result = read_label(_read(path), spec, engine=engine, psm=psm)
        fields = "  ".join(f"{f.name}={f.value if f.value is not None else '-'}" for f in result.fields.values())
        problems = "; ".join(result.problems)
        status = result.reason or (f"PROBLEM {problems}" if problems else "ok")
        mode = f", psm {result.psm}" if result.psm is not None else ""  # rapidocr has no page-segmentation mode
        source = ", the whole photo read" if result.image == "whole" else ""
        print(f"{path}: {fields}  [{status}; {len(result.words)} words{mode}{source}, {result.seconds:.2f} s]")
        failed += not result.ok
        results.append((path, result.to_dict()))
    _write_json(json_out, results)
    if failed:
        raise typer.Exit(1)


@ocr_app.command("gauge")
def ocr_gauge(
    images: Images,
    kind: Annotated[str | None, typer.Option(help="digital (seven-segment) or analog (dial).")] = None,
    gauge: Annotated[str | None, typer.Option(help="Gauge config name in configs/ocr/gauges/, or a YAML path.")] = None,
    min_angle: Annotated[
        float | None,
        typer.Option(
            help="Analog: angle of the scale's start (deg clockwise from 12). Leave out both angles to find "
            "the scale's ends on the dial from --min-value/--max-value alone."
        ),
    ] = None,
    max_angle: Annotated[float | None, typer.Option(help="Analog: angle of the scale's end.")] = None,
    min_value: Annotated[float | None, typer.Option(help="Analog: value at the scale's start.")] = None,
    max_value: Annotated[float | None, typer.Option(help="Analog: value at the scale's end.")] = None,
    point: Annotated[
        list[str] | None, typer.Option(help="Analog: ANGLE=VALUE calibration point, clockwise order (repeat).")
    ] = None,
    decimals: Annotated[int | None, typer.Option(help="Digital: decimals when the point is not seen.")] = None,
    polarity: Annotated[str | None, typer.Option(help="Digital: dark (LCD), bright (LED) or auto.")] = None,
    unit: Annotated[str | None, typer.Option(help="Unit to report.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Read digital displays or analog dials. Exits 1 when any image gives no value.

    Analog values alone (--min-value/--max-value, or a config without angles): the scale is found on the dial."""
    from vision.ocr import load_gauge, read_gauge

    config = load_gauge(gauge) if gauge else None
    kind = kind or (config.kind if config else None)
    if kind not in ("digital", "analog"):
        raise LineInspectError("say which gauge: --kind digital or --kind analog (or --gauge NAME)")
    if config is not None and config.kind != kind:
        raise LineInspectError(f"gauge config {gauge!r} is {config.kind}, not {kind}")
    if kind == "analog":
        shorthand = {"min_angle": min_angle, "max_angle": max_angle, "min_value": min_value, "max_value": max_value}
        spec = _analog_spec(config, shorthand, point, unit)
    else:
        spec = _digital_spec(config, {"decimals": decimals, "polarity": polarity, "unit": unit})
    results, failed = [], 0
    for path in images:
        result = read_gauge(_read(path), spec)
        shown = result.value if result.value is not None else "-"
        extra = f", angle {result.angle} deg" if kind == "analog" and result.angle is not None else ""
        if kind == "analog" and spec.find_scale and result.angle is not None:
            extra += _found_scale(result, spec)
        if kind == "digital" and result.text:
            extra = f", shown {result.text!r}"
        status = result.reason or "ok"
        print(
            f"{path}: {shown} {result.unit or ''}".rstrip()
            + f"  [{status}; confidence {result.confidence:.2f}{extra}, {result.seconds:.2f} s]"
        )
        failed += result.value is None
        results.append((path, result.to_dict()))
    _write_json(json_out, results)
    if failed:
        raise typer.Exit(1)


def _analog_spec(config, shorthand: dict, points: list[str] | None, unit: str | None):
    """The config's calibration, replaced by any given on the command line."""
    from vision.ocr import DialCalibration
    from vision.ocr.config import dial_calibration

    keys = config.model_dump(exclude_none=True) if isinstance(config, DialCalibration) else {"kind": "analog"}
    if points or any(v is not None for v in shorthand.values()):  # the command line's scale replaces the config's
        keys = {k: v for k, v in keys.items() if k not in ("points", "find_scale", *shorthand)}
        keys.update({k: v for k, v in shorthand.items() if v is not None})
        if points:
            keys["points"] = [_calibration_point(p) for p in points]
    if unit:
        keys["unit"] = unit
    if not {"points", "min_angle", "max_angle", "min_value", "max_value"} & set(keys):
        raise LineInspectError(
            "an analog dial needs a calibration: --gauge NAME, or --min-value/--max-value (with --min-angle/"
            "--max-angle, or without them to find the scale's ends on the dial), or --point ANGLE=VALUE (repeat)"
        )
    return dial_calibration(**keys)


def _found_scale(result, spec) -> str:
    """Where the scale's ends were found on the dial, or the angles assumed instead."""
    if result.scale_ends:
        start, end = result.scale_ends
        return f", scale found on the dial: {start:g} to {end:g} deg"
    return f", scale not found on the dial: assumed {spec.points[0].angle:g} to {spec.points[-1].angle:g} deg"


def _digital_spec(config, updates: dict):
    """The config's display profile (or the default one) with command-line options applied."""
    from pydantic import ValidationError

    from vision.ocr import DisplayProfile

    profile = config if isinstance(config, DisplayProfile) else DisplayProfile()
    try:
        return DisplayProfile.model_validate(
            {**profile.model_dump(), **{k: v for k, v in updates.items() if v is not None}}
        )
    except ValidationError as exc:
        raise LineInspectError(f"digital display options: {exc}") from None


def _calibration_point(entry: str) -> dict:
    angle, sep, value = entry.partition("=")
    try:
        return {"angle": float(angle), "value": float(value)}
    except ValueError:
        raise LineInspectError(f"--point {entry!r}: write it as ANGLE=VALUE, e.g. -135=0") from None


@ocr_app.command("train-digits")
def train_digits(
    out: Annotated[Path, typer.Option(help="ONNX file to write (the shipped one: vision/ocr/models/sevenseg.onnx).")],
    samples: Annotated[int, typer.Option(min=1000, help="Rendered training strips.")] = 30_000,
    epochs: Annotated[int, typer.Option(min=1)] = 6,
    seed: Annotated[int, typer.Option(help="Seed for rendering, initialisation and order.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads (default: all).")] = None,
) -> None:
    """Train the seven-segment line reader on rendered displays (needs torch) and export it to ONNX."""
    import torch

    from vision.ocr.sevenseg_train import train_digits as run

    if threads:
        torch.set_num_threads(threads)
    run(out, samples=samples, epochs=epochs, seed=seed, console=console)


def bench_ocr(
    data: Annotated[
        Path | None, typer.Option(help="Folder holding the real data sets (default ../shared/data).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Sections: displays, dials, waybills, rendered-labels, rendered-displays, rendered-dials."),
    ] = None,
    engine: Annotated[
        list[str] | None,
        typer.Option(help="Label engine(s): pytesseract, tesserocr or rapidocr (repeat to compare)."),
    ] = None,
    rendered: Annotated[int, typer.Option(min=1, help="Images per rendered display and dial set.")] = 40,
    family: Annotated[
        list[str] | None, typer.Option(help="Rendered label families to run (repeat; default all).")
    ] = None,
    per_family: Annotated[int, typer.Option(min=1, help="Rendered labels per family.")] = 10,
    seed: Annotated[
        int, typer.Option(help="First seed of the rendered label families: develop on one, report on another.")
    ] = 0,
    dial_calibrations: Annotated[
        Path | None, typer.Option(help="YAML: per-dial min/max angles for the analog set (image name -> keys).")
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Accuracy and time per image of every OCR reader, on real photos and rendered images."""
    from vision.ocr.bench import DEFAULT_DATA, SECTIONS, run_bench
    from vision.ocr.render_label import LABEL_FAMILIES
    from vision.ocr.tesseract import limit_openmp
    from vision.progress import progress_bar

    limit_openmp()
    sections = only or list(SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise LineInspectError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    unknown = sorted(set(family or []) - set(LABEL_FAMILIES))
    if unknown:
        raise LineInspectError(f"unknown label family {', '.join(unknown)}; choose from {', '.join(LABEL_FAMILIES)}")
    data = data or DEFAULT_DATA
    if any(s in ("displays", "dials", "waybills") for s in sections) and not data.is_dir():
        raise LineInspectError(f"real data not found at {data}; pass --data or choose rendered sections with --only")
    with progress_bar(console, "images") as bar:
        tasks: dict[str, int] = {}

        def tick(what: str, total: int) -> None:
            if total:
                tasks[what] = bar.add_task(what, total=total)
            else:
                bar.advance(tasks[what])

        report = run_bench(
            data,
            sections,
            engine or ["pytesseract"],
            rendered,
            dial_calibrations,
            tick,
            family or LABEL_FAMILIES,
            per_family,
            seed,
        )
    Console().print(summary_table(report))
    if json_out:
        json_out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        console.print(f"wrote {json_out}")


def summary_table(report: dict) -> Table:
    """One row per figure that matters; the JSON has the details (misses, per-image reads)."""
    table = Table(title=f"OCR benchmark ({report['seconds']:.0f} s)")
    for column in ("set", "measure", "result", "time / image"):
        table.add_column(column)

    def rate(r: dict) -> str:
        return f"{r['rate']:.1%} ({r['right']}/{r['of']})" if r["rate"] is not None else "-"

    def secs(t: dict) -> str:
        return f"{t['mean_s'] * 1000:.0f} ms mean, {t['median_s'] * 1000:.0f} ms median"

    if "displays" in report:
        d = report["displays"]
        for group, g in d["groups"].items():
            table.add_row(
                f"gaspump {group}",
                "integer part exact",
                rate(g["integer_part"]),
                secs(d["time"]) if group == "all" else "",
            )
            table.add_row("", "... or rounded up", rate(g["integer_part_or_rounded_up"]), "")
    if "dials" in report:
        d = report["dials"]
        for name in ("scale_from_ticks", "default_270_sweep", "per_dial_calibration"):
            if name in d:
                e = d[name]
                table.add_row(
                    f"analog gauges ({name.replace('_', ' ')})",
                    "error / span median, p90",
                    f"{e['median_error_of_span']:.1%}, {e['p90_error_of_span']:.1%} "
                    f"(read {e['read']}/{e['dials']}, {e['within_2pct']} within 2%)",
                    secs(d["time"]) if name == "scale_from_ticks" else "",
                )
    for engine, w in report.get("waybills", {}).items():
        table.add_row(f"waybills ({engine})", "tracking ID exact", rate(w["tracking_id"]), secs(w["time"]))
    for engine, families in report.get("rendered-labels", {}).items():
        for family, r in families.items():
            english, korean = r["english"], r["korean"]
            split = f"; English {rate(english)}, Korean {rate(korean)}" if korean["of"] else ""
            table.add_row(
                f"labels: {family} ({engine})",
                "all fields right",
                f"{rate(r['labels_all_fields_right'])}{split}",
                secs(r["time"]),
            )
            table.add_row("", "fields right / CER", f"{rate(r['fields_right'])} / {r['char_error_rate']:.1%}", "")
    if "rendered-displays" in report:
        r = report["rendered-displays"]
        table.add_row(
            "rendered displays", "exact / CER", f"{rate(r['exact'])} / {r['char_error_rate']:.1%}", secs(r["time"])
        )
        if "stock_tesseract" in r:
            s = r["stock_tesseract"]
            table.add_row("", "stock Tesseract exact / CER", f"{rate(s['exact'])} / {s['char_error_rate']:.1%}", "")
    if "rendered-dials" in report:
        r = report["rendered-dials"]
        table.add_row(
            "rendered dials",
            "error / span median, p90",
            f"{r['median_error_of_span']:.1%}, {r['p90_error_of_span']:.1%} (read {r['read']}/{r['dials']})",
            secs(r["time"]),
        )
    return table


def register(app: typer.Typer) -> None:
    """Add `ocr ...` to the main CLI and `bench ocr` to the `bench` group."""
    app.add_typer(ocr_app, name="ocr")
    bench_app.command("ocr")(bench_ocr)
