"""`lineinspect bench accuracy`: every method and backbone asked for, on every labelled data set given.

Each data set is split once by the recipe's seed (train / val / holdout, as `train` splits it); each
combination trains, exports (parity check, threshold calibrated for a 5% miss rate on the holdout) and is
measured on the holdout images it never saw: ROC-AUC with its 95% bootstrap interval, average precision, the
miss and false-reject rates at the exported threshold, training seconds, and ONNX Runtime milliseconds per
image (batches of 32 preprocessed images, the engine's batch size; decoding not included).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from annotation.manifest import Manifest
from vision.onnx_model import OnnxClassifier
from vision.predict import load_input
from vision.recipe import load_recipe
from vision.training.export import export_run
from vision.training.train import train

MISS_RATE = 0.05


@dataclass
class AccuracyRow:
    dataset: str
    method: str
    backbone: str
    input: str
    train_images: int  # what the model learned from: every training image, or the good ones for anomaly
    holdout: str  # "defects/normals"
    roc_auc: float | None
    roc_auc_ci: list[float] | None
    average_precision: float | None
    miss_rate: float | None
    false_reject_rate: float | None
    threshold_note: str
    train_seconds: float
    ms_per_image: float

    def cells(self) -> list[str]:
        ci = f"{self.roc_auc_ci[0]:.3f}-{self.roc_auc_ci[1]:.3f}" if self.roc_auc_ci else "n/a"
        return [
            self.dataset, self.method, self.backbone, self.input, str(self.train_images), self.holdout,
            _num(self.roc_auc), ci, _num(self.average_precision), _pct(self.miss_rate),
            _pct(self.false_reject_rate), f"{self.train_seconds:.0f}", f"{self.ms_per_image:.1f}",
        ]  # fmt: skip


HEADERS = [
    "data set", "method", "backbone", "input", "trained on", "holdout def/norm", "ROC-AUC", "95% CI", "AP",
    "miss", "false rejects", "train s", "ms/img",
]  # fmt: skip


def bench_accuracy(
    datasets: dict[str, Manifest],
    methods: list[str],
    backbones: list[str],
    config: Path | None,
    overrides: dict,
    out: Path,
    console: Console,
) -> list[AccuracyRow]:
    """Train, export and measure each (data set, method, backbone); write accuracy.json and accuracy.md."""
    rows = []
    quiet = Console(stderr=True, quiet=True)
    for name, manifest in datasets.items():
        for method in methods:
            for backbone in backbones:
                recipe = load_recipe(config, {**overrides, "method": method, "model.architecture": backbone})
                work = out / name / f"{method}-{backbone}"
                console.print(f"[bold]{name}[/]: {method} on {backbone} ...")
                result = train(manifest, recipe, work / "run", console=quiet)
                exported = export_run(work / "run", work / "model.onnx", miss_rate=MISS_RATE, console=quiet, force=True)
                m, point = exported.meta.metrics, exported.meta.operating_point
                row = AccuracyRow(
                    dataset=name,
                    method=method,
                    backbone=backbone,
                    input=f"{exported.meta.input.height}x{exported.meta.input.width}",  # as `train` shaped it
                    train_images=_trained_on(exported.meta.training_data.counts["train"], method),
                    holdout=f"{m['n_defect']}/{m['n_normal']}",
                    roc_auc=m["roc_auc"],
                    roc_auc_ci=m["roc_auc_ci"],
                    average_precision=m["average_precision"],
                    miss_rate=point["miss_rate"],
                    false_reject_rate=point["false_reject_rate"],
                    threshold_note=point["note"],
                    train_seconds=result.seconds,
                    ms_per_image=inference_ms(work / "model.onnx", work / "run"),
                )
                console.print("  " + "  ".join(f"{h} {c}" for h, c in zip(HEADERS[6:], row.cells()[6:], strict=True)))
                rows.append(row)
                _write(rows, out)
    console.print(table(rows))
    return rows


def inference_ms(model: Path, run: Path, batch: int = 32, repeats: int = 3) -> float:
    """ONNX Runtime time per image on batches of the run's own preprocessed holdout images."""
    classifier = OnnxClassifier(model)
    plan = json.loads((run / "split.json").read_text(encoding="utf-8"))
    paths = [Path(i["path"]) for i in plan["items"] if i["split"] == "holdout"][:batch]
    inputs = np.stack([x for x, _ in (load_input(p, classifier.spec) for p in paths) if x is not None])
    classifier.predict(inputs)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        classifier.predict(inputs)
    return (time.perf_counter() - started) * 1000 / (repeats * len(inputs))


def table(rows: list[AccuracyRow]) -> Table:
    out = Table(title=f"Holdout accuracy (threshold calibrated for a {MISS_RATE:.0%} miss rate)")
    for header in HEADERS:
        out.add_column(header, overflow="fold")
    for row in rows:
        out.add_row(*row.cells())
    return out


def _write(rows: list[AccuracyRow], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps([asdict(r) for r in rows], indent=1), encoding="utf-8")
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    (out / "accuracy.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _trained_on(counts: dict[str, int], method: str) -> int:
    return counts["normal"] if method == "anomaly" else sum(counts.values())


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
