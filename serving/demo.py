"""`lineinspect demo`: the whole chain on generated sample data, in a few minutes on a laptop CPU."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from annotation.config_loader import builtin_configs
from annotation.errors import LineInspectError
from annotation.exports import ImportOptions, load_exports
from annotation.report import render_report

DEMO_RECIPE = builtin_configs() / "train" / "demo.yaml"


def run_demo(out: Path, config: Path | None, console: Console) -> None:
    """Sample data -> check -> train -> export -> evaluate on fresh images -> inspect a folder -> serve."""
    from serving.batch.inputs import collect_inputs
    from serving.batch.run import inspect_paths
    from vision.evaluate import evaluate_model
    from vision.onnx_model import OnnxClassifier
    from vision.recipe import load_recipe
    from vision.sample_data import generate
    from vision.training.export import export_run
    from vision.training.train import train

    out = Path(out)
    run_dir, model = out / "run", out / "model.onnx"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo always starts fresh
    started = time.monotonic()
    recipe = load_recipe(config or DEMO_RECIPE)

    console.rule("1. sample data (Label Studio export + images)")
    # Images at the model's input size: a defect a few pixels wide survives no downscaling.
    size = (recipe.input.height, recipe.input.width)
    labelled = generate(out / "sample-data", n_normal=500, n_defect=500, size=size, seed=0)
    production = generate(out / "line-images", n_normal=150, n_defect=150, size=size, seed=1)
    console.print(f"labelled set: {labelled.export}; a later day on the line: {production.root / 'images'}")

    console.rule("2. lineinspect dataset check")
    manifest = load_exports([labelled.export], ImportOptions(images_root=labelled.root))
    console.print(render_report(manifest))
    if manifest.errors:
        raise LineInspectError("the sample export has errors; this is a bug in the demo")

    console.rule("3. lineinspect train")
    result = train(manifest, recipe, run_dir, console=console)

    console.rule("4. lineinspect export (parity check + threshold for a 5% miss rate)")
    exported = export_run(run_dir, model, console=console)

    console.rule("5. lineinspect evaluate on images the model never saw")
    unseen = load_exports([production.export], ImportOptions(images_root=production.root))
    evaluation = evaluate_model(model, unseen, out / "evaluation", console)

    console.rule("6. lineinspect inspect a folder")
    inputs = collect_inputs([str(production.root / "images")], ImportOptions())
    summary = inspect_paths(OnnxClassifier(model), inputs, out / "results.csv", console=console)

    console.rule("7. lineinspect serve: a camera posts parts to the service")
    service_dir = out / "service"
    shutil.rmtree(service_dir, ignore_errors=True)
    posted = _post_parts(model, service_dir, [s.path for s in production.images[:8]], console)

    m = evaluation.metrics
    console.rule("done")
    console.print(
        f"trained {result.epochs_run} epochs in {result.seconds:.0f} s; "
        f"whole demo {time.monotonic() - started:.0f} s\n"
        f"model        {model}  (version {exported.meta.version}, threshold {exported.meta.threshold:.4f}, "
        f"parity {exported.meta.parity['max_abs_diff']:.1e})\n"
        f"evaluation   {evaluation.out_dir}  ROC-AUC {m['roc_auc']:.4f}, miss rate {m['miss_rate']:.2%}, "
        f"false-reject rate {m['false_reject_rate']:.2%} on {m['n']} unseen images\n"
        f"inspection   {summary.out}  ({summary.images} images, {summary.defects} flagged defect)\n"
        f"service      {posted} records in {service_dir / 'lineinspect.db'}; "
        f"run it yourself: lineinspect serve --model {model}",
        highlight=False,
    )


def _post_parts(model: Path, data_dir: Path, images: list[Path], console: Console) -> int:
    """Start the service, post each image as a camera would, print the answers; return the records stored."""
    import httpx

    from serving.benchmarks.local_server import LocalServer

    server = LocalServer(model, None, [], data_dir=data_dir)
    try:
        table = Table("image", "verdict", "score", "total ms")
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i, path in enumerate(images):
                answer = client.post(
                    "/v1/inspect",
                    files={"image": (path.name, path.read_bytes(), "image/jpeg")},
                    data={"line": "demo-line", "station": "st-1", "camera": "cam-1", "part_id": f"part-{i:03d}"},
                )
                answer.raise_for_status()
                body = answer.json()
                table.add_row(path.name, body["verdict"], f"{body['score']:.4f}", f"{body['timings_ms']['total']:.1f}")
            console.print(f"POST {server.url}/v1/inspect (multipart field `image`, line/station/camera/part_id)")
            console.print(table)
            return len(client.get("/v1/inspections", params={"line": "demo-line", "limit": 100}).json()["items"])
    finally:
        server.stop()
