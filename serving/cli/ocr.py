"""`lineinspect ocr label|gauge|train-digits`: the OCR commands (their benchmark is `bench ocr`).

Reading needs no torch; only `train-digits` imports it. Each reading prints one line per
image (stdout) and, with --json, every detail (words, boxes, confidences) to a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from annotation.errors import LineInspectError
from serving.cli.options import JsonOut, console

ocr_app = typer.Typer(help="Read labels, digital displays and analog dials.", no_args_is_help=True)

Images = Annotated[list[Path], typer.Argument(help="Image files.")]
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
    required field is missing, invalid or read with low confidence on any image."""
    from vision.ocr import load_template, read_label
    from vision.ocr.tesseract import limit_openmp

    limit_openmp()
    spec = load_template(template)
    results, failed = [], 0
    for path in images:
        result = read_label(_read(path), spec, engine=engine, psm=psm)
        fields = "  ".join(f"{f.name}={f.value if f.value is not None else '-'}" for f in result.fields.values())
        problems = "; ".join(result.problems)
        unsure = "; ".join(result.unsure)
        status = result.reason or (f"PROBLEM {problems}" if problems else f"UNSURE {unsure}" if unsure else "ok")
        mode = f", psm {result.psm}" if result.psm is not None else ""  # rapidocr has no page-segmentation mode
        source = ", the whole photo read" if result.image == "whole" else ""
        print(f"{path}: {fields}  [{status}; {len(result.words)} words{mode}{source}, {result.seconds:.2f} s]")
        failed += result.status != "ok"
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
    needle: Annotated[
        str | None,
        typer.Option(help="Analog: the pointer to read, dark, light or red (default auto: the clearest one)."),
    ] = None,
    decimals: Annotated[int | None, typer.Option(help="Digital: decimals when the point is not seen.")] = None,
    time_fields: Annotated[
        int | None, typer.Option(help="Digital: a timer or clock showing a time of 2 (M:SS) or 3 (H:MM:SS) fields.")
    ] = None,
    polarity: Annotated[str | None, typer.Option(help="Digital: dark (LCD), bright (LED) or auto.")] = None,
    region: Annotated[
        str | None,
        typer.Option(help="Digital: where the display is (pixels): X,Y,WIDTH,HEIGHT or corners X1,Y1,...,X4,Y4."),
    ] = None,
    row: Annotated[
        int | None, typer.Option(help="Digital: on a display with readings in rows, the one to read (1 = top).")
    ] = None,
    unit: Annotated[str | None, typer.Option(help="Unit to report.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Read digital displays or analog dials. Exits 1 when any image gives no value or only a best guess.

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
        spec = _analog_spec(config, shorthand, point, unit, needle)
    else:
        options = {"decimals": decimals, "time_fields": time_fields, "polarity": polarity, "unit": unit}
        options |= {"region": _region(region), "row": row}
        spec = _digital_spec(config, options)
    results, failed = [], 0
    for path in images:
        result = read_gauge(_read(path), spec)
        shown = result.value if result.value is not None else "-"
        extra = f", angle {result.angle} deg" if kind == "analog" and result.angle is not None else ""
        if kind == "analog" and spec.find_scale and result.angle is not None:
            extra += _found_scale(result, spec)
        if kind == "digital" and result.text:
            extra = f", shown {result.text!r}"
        status = {"ok": "ok", "uncertain": f"UNCERTAIN {result.reason}"}.get(result.status, result.reason)
        print(
            f"{path}: {shown} {result.unit or ''}".rstrip()
            + f"  [{status}; confidence {result.confidence:.2f}{extra}, {result.seconds:.2f} s]"
        )
        failed += result.status != "ok"
        results.append((path, result.to_dict()))
    _write_json(json_out, results)
    if failed:
        raise typer.Exit(1)


def _analog_spec(config, shorthand: dict, points: list[str] | None, unit: str | None, needle: str | None):
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
    if needle:
        keys["needle"] = needle
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


def _region(entry: str | None) -> list | None:
    """--region's numbers: a box (4) or four corners (8)."""
    if entry is None:
        return None
    try:
        numbers = [float(v) for v in entry.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) == 4:
        return numbers
    if len(numbers) == 8:
        return [numbers[i : i + 2] for i in range(0, 8, 2)]
    raise LineInspectError(f"--region {entry!r}: write it as X,Y,WIDTH,HEIGHT or X1,Y1,X2,Y2,X3,Y3,X4,Y4 (pixels)")


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
    real: Annotated[
        Path | None,
        typer.Option(
            help="The sevenseg-digits folder: also train on its real crops (odd-indexed files of each class "
            "folder; the even ones stay held out for `bench ocr`), alone and in lines."
        ),
    ] = None,
    real_share: Annotated[
        float | None,
        typer.Option(min=0.01, max=0.99, help="With --real: the share of all examples that are real (default 0.25)."),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="An exported model (e.g. the shipped one) to train on from, batch norms frozen."),
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 3e-3,
) -> None:
    """Train the seven-segment line reader on rendered displays (needs torch) and export it to ONNX."""
    import torch

    from vision.training.sevenseg import train_digits as run

    if threads:
        torch.set_num_threads(threads)
    share = {} if real_share is None else {"real_share": real_share}
    run(out, samples=samples, epochs=epochs, seed=seed, console=console, real=real, init=init, lr=lr, **share)
