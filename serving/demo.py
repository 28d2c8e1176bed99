"""`lineinspect demo`: the whole chain on generated sample data, in a few minutes on a laptop CPU."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console

from annotation.errors import LineInspectError
from annotation.exports import ImportOptions, load_exports
from annotation.report import render_report

DEMO_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "train" / "demo.yaml"


def run_demo(out: Path, config: Path | None, console: Console) -> None:
    """Sample data -> check -> train -> export -> evaluate on fresh images -> inspect a folder."""
    from serving.offline import collect_inputs, inspect_paths
    from vision.evaluate import evaluate_model
    from vision.export import export_run
    from vision.recipe import load_recipe
    from vision.sample_data import generate
    from vision.train import train

    out = Path(out)
    run_dir, model = out / "run", out / "model.onnx"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo always starts fresh
    started = time.monotonic()

    console.rule("1. sample data (Label Studio export + images)")
    labelled = generate(out / "sample-data", n_normal=400, n_defect=400, seed=0)
    production = generate(out / "line-images", n_normal=150, n_defect=150, seed=1)
    console.print(f"labelled set: {labelled.export}; a later day on the line: {production.root / 'images'}")

    console.rule("2. lineinspect dataset check")
    manifest = load_exports([labelled.export], ImportOptions(images_root=labelled.root))
    console.print(render_report(manifest))
    if manifest.errors:
        raise LineInspectError("the sample export has errors; this is a bug in the demo")

    console.rule("3. lineinspect train")
    recipe = load_recipe(config or DEMO_RECIPE)
    result = train(manifest, recipe, run_dir, console=console)

    console.rule("4. lineinspect export (parity check + threshold for a 5% miss rate)")
    exported = export_run(run_dir, model, console=console)

    console.rule("5. lineinspect evaluate on images the model never saw")
    unseen = load_exports([production.export], ImportOptions(images_root=production.root))
    evaluation = evaluate_model(model, unseen, out / "evaluation", console)

    console.rule("6. lineinspect inspect a folder")
    summary = inspect_paths(
        model, collect_inputs([str(production.root / "images")], ImportOptions()), out / "results.csv", console=console
    )

    m = evaluation.metrics
    console.rule("done")
    console.print(
        f"trained {result.epochs_run} epochs in {result.seconds:.0f} s; "
        f"whole demo {time.monotonic() - started:.0f} s\n"
        f"model        {model}  (version {exported.meta.version}, threshold {exported.meta.threshold:.4f}, "
        f"parity {exported.meta.parity['max_abs_diff']:.1e})\n"
        f"evaluation   {evaluation.out_dir}  ROC-AUC {m['roc_auc']:.4f}, miss rate {m['miss_rate']:.2%}, "
        f"false-reject rate {m['false_reject_rate']:.2%} on {m['n']} unseen images\n"
        f"inspection   {summary.out}  ({summary.images} images, {summary.defects} flagged defect)"
    )
