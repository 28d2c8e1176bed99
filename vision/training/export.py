"""Export a training run to a self-describing ONNX model that has proven it matches PyTorch."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from annotation.errors import LineInspectError
from vision.calibrate import OperatingPoint, calibrate, calibrate_false_rejects, operating_point
from vision.metadata import InputSpec, ModelMetadata, TrainingData, write_metadata
from vision.metrics import chance_verdict, evaluate_scores, interval_text, what_to_try
from vision.onnx_model import OnnxClassifier
from vision.predict import iter_predictions, load_input
from vision.run_dir import RunDir
from vision.splits import SPLITS
from vision.training.anomaly import build_patchcore
from vision.training.cam import WithHeatmap
from vision.training.models import build_model, head_of_checkpoint

PARITY_TOLERANCE = 1e-4  # max |P_torch(defect) - P_onnx(defect)| over the checked images
HEATMAP_TOLERANCE = 1e-3  # max |map_torch - map_onnx| / max |map_torch| over the checked images
OPSET = 18
DEFECT_CLASS = "defect"


@dataclass
class ExportResult:
    path: Path
    meta: ModelMetadata  # meta.parity holds the PyTorch-vs-ONNX check


def export_run(
    run_path: Path,
    out: Path,
    miss_rate: float | None = None,
    parity_images: int = 64,
    console: Console | None = None,
    force: bool = False,
) -> ExportResult:
    """Export `best.pt` of a run, check parity, calibrate on the holdout split, write `out` atomically.

    A model whose holdout ROC-AUC cannot be told from chance is refused unless `force`."""
    console = console or Console(stderr=True)
    run = RunDir(Path(run_path))
    plan = run.read_plan()
    recipe = run.read_recipe()
    if not run.best.is_file():
        raise LineInspectError(f"{run.root} has no best.pt: training has not finished an epoch")
    classes = plan["classes"]
    spec = recipe.input.spec()
    wrapped = _trained_model(run, recipe, classes)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx.tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        console.print("exporting to ONNX ...")
        _to_onnx(wrapped, spec.height, spec.width, tmp)
        holdout = [i for i in plan["items"] if i["split"] == "holdout"]
        placeholder = _placeholder_meta(recipe, plan, classes, spec)
        write_metadata(tmp, placeholder)
        classifier = OnnxClassifier(tmp, providers=["CPUExecutionProvider"])
        max_diff, map_diff, checked = _parity(wrapped, classifier, [Path(i["path"]) for i in holdout[:parity_images]])
        if max_diff > PARITY_TOLERANCE or map_diff > HEATMAP_TOLERANCE:
            raise LineInspectError(
                f"parity check failed: ONNX Runtime and PyTorch defect probabilities differ by up to {max_diff:.2e} "
                f"(tolerance {PARITY_TOLERANCE:.0e}), heatmaps by up to {map_diff:.2e} of their peak (tolerance "
                f"{HEATMAP_TOLERANCE:.0e}) on {checked} holdout images; the model was not written"
            )
        console.print(
            f"parity: max |torch - onnx| = {max_diff:.2e}, heatmaps {map_diff:.2e} on {checked} holdout images"
        )

        scores, truth = _holdout_scores(classifier, holdout)
        target = miss_rate if miss_rate is not None else recipe.calibration.miss_rate
        confidence = recipe.calibration.confidence
        if recipe.method == "anomaly" and not truth.any():
            point = calibrate_false_rejects(scores, truth, recipe.calibration.false_reject_rate, confidence)
        elif target is not None:
            point = calibrate(scores, truth, target, confidence)
        else:
            point = operating_point(scores, truth, 0.5, confidence)
        metrics = evaluate_scores(truth, scores, point.threshold)
        verdict = chance_verdict(metrics["roc_auc_ci"], f"{len(truth)} holdout")
        if verdict and not force:
            tip = what_to_try(recipe.model.pretrained != "none", recipe.method)
            raise LineInspectError(f"{verdict}: the model was not written ({tip}; --force writes it anyway)")
        if verdict:
            console.print(f"[bold yellow]warning:[/] {verdict}; written because of --force")
        meta = placeholder.model_copy(
            update={
                "version": _version(tmp),
                "threshold": point.threshold,
                "operating_point": point.to_dict(),
                "metrics": metrics,
                "parity": {
                    "max_abs_diff": max_diff,
                    "images": checked,
                    "tolerance": PARITY_TOLERANCE,
                    "heatmap_max_rel_diff": map_diff,
                },
            }
        )
        write_metadata(tmp, meta)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    _report(console, out, meta, point)
    return ExportResult(out, meta)


def _trained_model(run: RunDir, recipe, classes: list[str]) -> torch.nn.Module:
    """The run's best weights in the exported form: probabilities and heatmap."""
    checkpoint = torch.load(run.best, map_location="cpu", weights_only=True)
    state = checkpoint["model"]
    if recipe.method == "anomaly":
        model = build_patchcore(recipe, classes, tuple(state["bank"].shape))
        model.load_state_dict(state)
        return model.eval()
    spec = recipe.input.spec()
    size = (spec.height, spec.width)
    head = head_of_checkpoint(checkpoint)
    model = build_model(recipe.model.architecture, len(classes), "none", Console(quiet=True), size, head)
    model.load_state_dict(state)
    return WithHeatmap(model, classes.index(DEFECT_CLASS)).eval()


def _to_onnx(model: torch.nn.Module, height: int, width: int, path: Path) -> None:
    example = torch.zeros(2, 3, height, width)
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["input"],
        output_names=["probabilities", "heatmap"],
        dynamic_shapes=({0: batch},),
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def _parity(model: torch.nn.Module, classifier: OnnxClassifier, paths: list[Path]) -> tuple[float, float, int]:
    """Both runtimes on the same real images, through the one preprocessing: the probabilities as `predict`
    reads them, the heatmaps relative to their largest magnitude."""
    inputs = [x for x, _ in (load_input(p, classifier.spec) for p in paths) if x is not None]
    if not inputs:
        raise LineInspectError("parity check needs readable holdout images; none could be read")
    batch = np.stack(inputs)
    with torch.no_grad():
        expected, expected_maps = (t.numpy() for t in model(torch.from_numpy(batch)))
    got = classifier.predict(batch)
    _, maps = classifier.predict_with_heatmaps(batch)
    k = classifier.meta.defect_index
    map_diff = np.abs(expected_maps - maps).max() / max(float(np.abs(expected_maps).max()), 1e-12)
    return float(np.abs(expected[:, k] - got[:, k]).max()), float(map_diff), len(inputs)


def _holdout_scores(classifier: OnnxClassifier, holdout: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    labels = {Path(i["path"]): i["label"] == classifier.meta.defect_class for i in holdout}
    scores, truth = [], []
    for pred in iter_predictions(classifier, labels):
        if pred.result is None:
            raise LineInspectError(f"holdout image unreadable: {pred.path}: {pred.error}")
        scores.append(pred.result.score)
        truth.append(labels[pred.path])
    return np.asarray(scores), np.asarray(truth, dtype=bool)


def _placeholder_meta(recipe, plan: dict, classes: list[str], spec) -> ModelMetadata:
    counts = {
        name: {c: sum(1 for i in plan["items"] if i["split"] == name and i["label"] == c) for c in classes}
        for name in SPLITS
    }
    return ModelMetadata(
        name=recipe.model.name,
        version="unversioned",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        architecture=recipe.model.architecture,
        method=recipe.method,
        classes=classes,
        defect_class=DEFECT_CLASS,
        heatmap_output="heatmap",
        input=InputSpec.of(spec),
        threshold=0.5,
        operating_point={},
        training_data=TrainingData(fingerprint=plan["fingerprint"], sources=plan["sources"], counts=counts),
    )


def _version(path: Path) -> str:
    """Date plus a hash of the weights: two exports of the same weights share a version."""
    import onnx

    model = onnx.load(str(path))
    digest = hashlib.sha256()
    for init in model.graph.initializer:
        digest.update(init.raw_data)
    return f"{datetime.now(UTC):%Y%m%d}-{digest.hexdigest()[:8]}"


def _report(console: Console, out: Path, meta: ModelMetadata, point: OperatingPoint) -> None:
    m = meta.metrics
    console.print(f"wrote {out}  ({meta.name} {meta.version})")
    console.print(
        f"holdout: ROC-AUC {_fmt(m.get('roc_auc'))}{interval_text(m.get('roc_auc_ci'))}, "
        f"threshold {point.threshold:.4f}: "
        f"miss rate {_fmt(point.miss_rate, '.2%')} (95% upper {point.miss_rate_upper:.2%}), "
        f"false-reject rate {_fmt(point.false_reject_rate, '.2%')}"
    )
    if not point.supported:
        console.print(f"[bold yellow]warning:[/] {point.note}")


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)
