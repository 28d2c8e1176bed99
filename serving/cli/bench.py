"""`lineinspect bench serve|soak|inspect|accuracy|ocr`: the benchmarks of the product's parts, in one group."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from annotation.config_loader import parse_overrides
from annotation.errors import LineInspectError
from serving.cli.options import (
    JsonOut,
    ModelFile,
    ServiceConfig,
    ServiceOverrides,
    cli_settings,
    console,
    import_options,
)

Images = Annotated[Path | None, typer.Option(help="Folder of images to send (default: generated 512x512 JPEGs).")]

bench_app = typer.Typer(help="Benchmarks of the product's parts.", no_args_is_help=True)


@bench_app.command("serve")
def bench_serve(
    model: ModelFile = None,
    images: Images = None,
    concurrency: Annotated[str, typer.Option(help="Concurrent clients, comma-separated.")] = "1,8,32",
    duration: Annotated[float, typer.Option(min=1, help="Seconds per measurement.")] = 10.0,
    url: Annotated[str | None, typer.Option(help="Target a running service instead of starting one.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Key for --url (a started service runs without keys).")] = None,
    config: ServiceConfig = None,
    set_: ServiceOverrides = None,
) -> None:
    """Throughput and latency of the service over HTTP against the engine's in-process ceiling."""
    from serving.benchmarks.local_server import LocalServer
    from serving.benchmarks.serve import bench_serve, sample_images
    from serving.engine import load_model

    settings = _served(config, set_, model)
    try:
        levels = [int(c) for c in concurrency.split(",")]
    except ValueError:
        raise LineInspectError(
            f"--concurrency {concurrency!r}: give numbers separated by commas, e.g. 1,8,32"
        ) from None
    if any(c < 1 for c in levels):
        raise LineInspectError("--concurrency: every level must be at least 1")
    loaded = load_model(settings.model, settings.engine, settings.limits.max_pixels)
    server = None if url else LocalServer(settings.model, config, set_ or [])
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        bench_serve(loaded, settings.engine, sample_images(images), levels, duration, server,
                    url or server.url, headers, Console())  # fmt: skip
    finally:
        if server:
            server.stop()


def _served(config: Path | None, overrides: list[str] | None, model: Path | None):
    """The service settings of a benchmark that starts or loads the model: refused without one."""
    settings = cli_settings(config, overrides, model=model)
    if settings.model is None:
        raise LineInspectError("no model: pass --model MODEL.onnx")
    return settings


@bench_app.command("soak")
def bench_soak(
    model: ModelFile = None,
    images: Images = None,
    concurrency: Annotated[int, typer.Option(min=1, max=1024, help="Concurrent connections.")] = 64,
    duration: Annotated[float, typer.Option(min=1, max=3600, help="Seconds in all.")] = 300.0,
    window: Annotated[float, typer.Option(min=1, help="Seconds per reported window.")] = 30.0,
    max_growth_mb: Annotated[float, typer.Option(help="Fail when the server's memory grows more than this.")] = 50.0,
    config: ServiceConfig = None,
    set_: ServiceOverrides = None,
) -> None:
    """Sustained load on a service started on loopback: fails on any 5xx or memory growth over the bound."""
    from serving.benchmarks.local_server import LocalServer
    from serving.benchmarks.serve import sample_images
    from serving.benchmarks.soak import soak

    settings = _served(config, set_, model)
    server = LocalServer(settings.model, config, set_ or [])
    try:
        result = soak(
            server.url, server.process.pid, sample_images(images), concurrency, duration, window, {}, Console()
        )
    finally:
        server.stop()
    verdict = "passed" if result.server_errors == 0 and result.growth_mb <= max_growth_mb else "FAILED"
    console.print(f"soak {verdict}: {result.server_errors} server errors, memory {result.growth_mb:+.0f} MB after "
                  f"the first window (bound {max_growth_mb:.0f} MB)", highlight=False)  # fmt: skip
    if verdict != "passed":
        raise typer.Exit(1)


@bench_app.command("inspect")
def bench_inspect(
    model: Annotated[Path, typer.Option("--model", help="ONNX model written by `lineinspect export`.")],
    images: Annotated[Path | None, typer.Option(help="Folder of images to inspect (instead of --generate).")] = None,
    generate: Annotated[int | None, typer.Option(min=1, help="Generate this many JPEGs (default 2000).")] = None,
    size: Annotated[str, typer.Option(help="Generated image size: 512 or 1920x1080.")] = "512",
    batch_size: Annotated[int, typer.Option(min=1, max=1024)] = 32,
    workers: Annotated[int | None, typer.Option(min=1, help="Decode workers (default: one per core).")] = None,
) -> None:
    """Local engine throughput against the in-process ceiling (same run, same files), and peak memory."""
    from serving.batch.inputs import collect_inputs
    from serving.benchmarks.inspect import bench_inspect as run_bench
    from serving.benchmarks.inspect import generate_images, parse_size
    from serving.settings import cpu_count
    from vision.onnx_model import OnnxClassifier

    if images is not None and generate is not None:
        raise LineInspectError("give --images or --generate, not both")
    classifier = OnnxClassifier(model)
    stdout = Console(soft_wrap=True)  # one line per figure, however narrow the terminal
    threads = workers or cpu_count()
    if images is not None:
        from annotation.exports import ImportOptions

        if not images.is_dir():
            raise LineInspectError(f"--images {images}: not a folder")
        paths = [p for p, _ in collect_inputs([str(images)], ImportOptions())]
        if not paths:
            raise LineInspectError(f"no images in {images}")
        run_bench(classifier, paths, batch_size, threads, stdout)
        return
    dims, count = parse_size(size), generate or 2000
    with tempfile.TemporaryDirectory(prefix="lineinspect-images-") as tmp:
        stdout.print(f"generating {count} {dims[0]}x{dims[1]} JPEGs ...")
        paths = generate_images(Path(tmp), count, dims)
        run_bench(classifier, paths, batch_size, threads, stdout)


@bench_app.command("accuracy")
def bench_accuracy(
    datasets: Annotated[
        list[str],
        typer.Argument(
            help="Labelled data: a folder of label sub-folders (ok/, defect/, at any depth), or an export file, "
            "written EXPORT@IMAGES_ROOT when its images resolve against a folder. NAME=... names the row."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for runs, models, accuracy.json and accuracy.md.")],
    method: Annotated[list[str] | None, typer.Option(help="classifier | anomaly (repeat; default both).")] = None,
    backbone: Annotated[
        list[str] | None, typer.Option(help="model.architecture to try (repeat; default: the recipe's).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Recipe YAML (default: configs/train/default.yaml).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe key for every run.")] = None,
    normal_label: Annotated[list[str] | None, typer.Option("--normal-label", help="Label meaning normal.")] = None,
    defect_label: Annotated[list[str] | None, typer.Option("--defect-label", help="Label meaning defect.")] = None,
) -> None:
    """Train, export and measure on a fixed holdout split: ROC-AUC (95% CI), AP, miss and false-reject rates at
    the exported 5%-miss threshold, training seconds, ONNX Runtime ms per image."""
    from vision.recipe import load_recipe
    from vision.training.bench_accuracy import bench_accuracy as run_bench

    methods = method or ["classifier", "anomaly"]
    if unknown := [m for m in methods if m not in ("classifier", "anomaly")]:
        raise LineInspectError(f"--method {unknown[0]!r}: choose classifier or anomaly")
    overrides = parse_overrides(set_ or [])
    recipe = load_recipe(config, overrides)
    labels = {"normal_labels": normal_label, "defect_labels": defect_label}
    manifests = {name: _manifest(path, out / "data" / name, labels) for name, path in map(_named, datasets)}
    run_bench(manifests, methods, backbone or [recipe.model.architecture], config, overrides, out, console)
    console.print(f"wrote {out / 'accuracy.md'} and {out / 'accuracy.json'}")


def _named(entry: str) -> tuple[str, str]:
    name, sep, path = entry.partition("=")
    if sep and name and "/" not in name:
        return name, path
    return Path(entry.partition("@")[0]).stem if Path(entry).suffix else Path(entry).name, entry


def _manifest(entry: str, work: Path, labels: dict):
    from annotation.export_writer import tasks_from_folders, write_export
    from annotation.exports import load_exports

    path, _, root = entry.partition("@")
    source = Path(path)
    if source.is_dir():
        tasks = tasks_from_folders(source)
        if not tasks:
            raise LineInspectError(f"no images under {source}")
        work.mkdir(parents=True, exist_ok=True)
        export, images_root = write_export(tasks, work / "export.json"), source
    elif source.is_file():
        export, images_root = source, Path(root) if root else None
    else:
        raise LineInspectError(f"data set not found: {source}")
    options = import_options(images_root, None, None, labels["normal_labels"], labels["defect_labels"], "majority")
    manifest = load_exports([export], options)
    if manifest.errors:
        first = manifest.errors[0]
        raise LineInspectError(f"{entry}: {len(manifest.errors)} errors in the data set, first: {first.message}")
    return manifest


@bench_app.command("ocr")
def bench_ocr(
    data: Annotated[
        Path | None, typer.Option(help="Folder holding the real data sets (default ../shared/data).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Sections: displays, digit-crops, dials, waybills, rendered-labels, rendered-displays, rendered-dials."
        ),
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
    digit_model: Annotated[
        Path | None,
        typer.Option(help="A model from `ocr train-digits` for the digit-crops section (default: the shipped one)."),
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
    if any(s in ("displays", "digit-crops", "dials", "waybills") for s in sections) and not data.is_dir():
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
            digit_model,
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

    def sure(r: dict) -> None:
        s = r["status"]
        table.add_row(
            "", "given as ok / ok right", f"{rate(s['ok'])} / {rate(s['ok_right'])}; {s['uncertain']} uncertain, "
            f"{s['unread']} unread", "",
        )  # fmt: skip

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
            sure(g)
    if "digit-crops" in report:
        r = report["digit-crops"]
        table.add_row("real LCD digit crops", "digit right", rate(r["digits"]), secs(r["time"]))
        sure(r)
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
                if name == "scale_from_ticks":
                    sure(d)
    for engine, w in report.get("waybills", {}).items():
        table.add_row(f"waybills ({engine})", "tracking ID exact", rate(w["tracking_id"]), secs(w["time"]))
        sure(w)
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
            sure(r)
    for family, r in report.get("rendered-displays", {}).items():
        table.add_row(
            f"rendered displays: {family}",
            "exact / CER",
            f"{rate(r['exact'])} / {r['char_error_rate']:.1%}",
            secs(r["time"]),
        )
        sure(r)
        c = r["cropped"]
        table.add_row("", "cropped: exact / CER", f"{rate(c['exact'])} / {c['char_error_rate']:.1%}", "")
        sure(c)
        if "stock_tesseract" in r:
            s = r["stock_tesseract"]
            table.add_row("", "stock Tesseract exact / CER", f"{rate(s['exact'])} / {s['char_error_rate']:.1%}", "")
    for family, r in report.get("rendered-dials", {}).items():
        table.add_row(
            f"rendered dials: {family}",
            "error / span median, p90",
            f"{r['median_error_of_span']:.1%}, {r['p90_error_of_span']:.1%} (read {r['read']}/{r['dials']})",
            secs(r["time"]),
        )
        sure(r)
    return table
