"""Train a classifier from a manifest: seeded, resumable, early-stopped on the validation split."""

from __future__ import annotations

import functools
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from annotation.errors import LineInspectError
from annotation.manifest import Manifest
from vision.calibrate import min_defects_needed
from vision.metrics import chance_verdict, interval_text, roc_auc_interval, what_to_try
from vision.progress import progress_bar
from vision.recipe import Recipe
from vision.run_dir import RunDir
from vision.splits import split_items, split_warnings
from vision.training.anomaly import fit_patchcore
from vision.training.augment import build_augmentations
from vision.training.data import ImageDataset, seed_worker
from vision.training.finetune import backbone_units, fit_frozen_head, fit_patch_head, freeze_backbone, train_mode
from vision.training.input_shape import fit_input_shape, scale_for_anomaly
from vision.training.models import EFFICIENTNET_LITE, PatchClassifier, build_model, head_of, head_of_checkpoint


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_metric: float
    epochs_run: int
    seconds: float
    history: list[dict]


def select_device(setting: str) -> torch.device:
    if setting == "cuda" and not torch.cuda.is_available():
        raise LineInspectError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device("cuda" if setting != "cpu" and torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def train(
    manifest: Manifest, recipe: Recipe, out: Path, resume: bool = False, console: Console | None = None
) -> TrainResult:
    """Split, train with early stopping, keep `best.pt` (best validation epoch) and `last.pt` (to resume)."""
    console = console or Console(stderr=True)
    run = RunDir(Path(out))
    splits = split_items(manifest.items, recipe.data.val_fraction, recipe.data.holdout_fraction, recipe.train.seed)
    _check_splits(splits, ["normal"] if recipe.method == "anomaly" else manifest.classes)
    calibration = recipe.calibration
    needed = min_defects_needed(calibration.miss_rate, calibration.confidence) if calibration.miss_rate else None
    for warning in split_warnings(
        splits, recipe.method, recipe.data.val_fraction, recipe.data.holdout_fraction, needed
    ):
        console.print(f"[bold yellow]warning:[/] {warning}")
    if resume:
        _check_same_plan(run, manifest)
    elif run.last.exists():
        raise LineInspectError(
            f"{run.root} already holds a training run: pass --resume to continue it, or another --out"
        )
    recipe, scaled = scale_for_anomaly(recipe)
    recipe, shaped = fit_input_shape(recipe, splits["train"])
    for line in (scaled, shaped):
        if line:
            console.print(line)
    run.write_plan(recipe, manifest, splits)

    seed_everything(recipe.train.seed)
    if recipe.method == "anomaly":
        return _train_anomaly(run, manifest, recipe, splits, console)
    device = select_device(recipe.train.device)
    class_index = {name: i for i, name in enumerate(manifest.classes)}
    spec = recipe.input.spec()
    train_samples = [(i.path, class_index[i.label]) for i in splits["train"]]
    train_set = ImageDataset(train_samples, spec, build_augmentations(recipe.augment))
    val_set = ImageDataset([(i.path, class_index[i.label]) for i in splits["val"]], spec)
    targets = np.array([t for _, t in train_set.samples])
    counts = np.bincount(targets, minlength=len(manifest.classes))

    pretrained = recipe.model.pretrained != "none"
    finetune = recipe.train.finetune
    checkpoint = torch.load(run.last, map_location="cpu", weights_only=False) if resume and run.last.exists() else None
    phase_one = pretrained and finetune.frozen_head and checkpoint is None
    head = recipe.model.head if checkpoint is None else head_of_checkpoint(checkpoint)
    choose = head == "auto" and phase_one and recipe.model.architecture in EFFICIENTNET_LITE
    model = build_model(
        recipe.model.architecture,
        len(manifest.classes),
        recipe.model.pretrained,
        console,
        (spec.height, spec.width),
        "pooled" if head == "auto" else head,
    ).to(device)
    class_weights = torch.tensor(len(targets) / (len(counts) * counts), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weights.to(device) if recipe.train.imbalance == "weighted_loss" else None
    )

    generator = torch.Generator()
    sampler = None
    if recipe.train.imbalance == "sampler":
        sampler = WeightedRandomSampler(
            (1.0 / counts[targets]).tolist(), num_samples=len(targets), replacement=True, generator=generator
        )
    loader_args = dict(
        batch_size=recipe.train.batch_size,
        num_workers=recipe.train.workers,
        worker_init_fn=seed_worker,
        pin_memory=device.type == "cuda",
    )
    train_loader = DataLoader(
        train_set,
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
        drop_last=len(train_set) > recipe.train.batch_size,
        **loader_args,
    )
    val_loader = DataLoader(val_set, shuffle=False, **loader_args)

    console.print(
        f"training {recipe.model.architecture} on {device.type}: {len(train_set)} train / {len(val_set)} val / "
        f"{len(splits['holdout'])} holdout images, classes {dict(zip(manifest.classes, counts.tolist(), strict=True))}"
    )
    started = time.monotonic()
    patience = recipe.train.early_stopping.patience
    defect = manifest.classes.index("defect")
    with progress_bar(console, unit="batch") as progress:
        if phase_one:
            candidates = [PatchClassifier(model, len(manifest.classes)).to(device), model] if choose else [model]
            plain = DataLoader(ImageDataset(train_samples, spec), shuffle=False, **loader_args)
            task = progress.add_task("phase 1: features", total=(len(plain) + len(val_loader) * 3) * len(candidates))
            tick = functools.partial(progress.advance, task)
            fitted = []
            for candidate in candidates:
                fit = fit_patch_head if isinstance(candidate, PatchClassifier) else fit_frozen_head
                head = fit(candidate, plain, val_loader, defect, device, tick)
                fitted.append(
                    (candidate, head, _validate(candidate, val_loader, loss_fn, device, manifest.classes, tick))
                )
            progress.update(task, visible=False)
            model, head, val = fitted[_kept_head(fitted)]
            for candidate, fit_head, fit_val in fitted:
                kept = "  *kept" if candidate is model and len(fitted) > 1 else ""
                console.print(
                    f"phase 1 (frozen backbone, {fit_head['what']}): val ROC-AUC {_fmt(fit_val['roc_auc'])}"
                    f"{interval_text(fit_val['roc_auc_ci'])}  val acc {fit_val['accuracy']:.3f}{kept}"
                )
        trainable = freeze_backbone(model, finetune.unfreeze_blocks if pretrained else "all")
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=recipe.train.lr, weight_decay=recipe.train.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.train.epochs)
        state = {"epoch": 0, "best_metric": -float("inf"), "best_epoch": 0, "stale": 0, "history": []}
        if checkpoint is not None:
            state = _resume_from(checkpoint, model, optimizer, scheduler)
            console.print(f"resuming {run.root} after epoch {state['epoch']}")
        if phase_one:
            heads = {head_of(candidate): fit_val["roc_auc"] for candidate, _, fit_val in fitted}
            _keep_epoch(
                run, model, optimizer, scheduler, state, recipe, 0, head["train_loss"], {**val, "heads": heads},
                phase="frozen head",
            )  # fmt: skip
        if trainable and state["epoch"] < recipe.train.epochs:
            what = "every layer" if trainable == len(backbone_units(model)) else f"the top {trainable} blocks"
            console.print(f"phase 2: training {what} and the head at lr {recipe.train.lr:g}")
        for epoch in range(state["epoch"] + 1, (recipe.train.epochs if trainable else 0) + 1):
            epoch_seed = recipe.train.seed * 1000 + epoch  # a resumed run replays the same epochs
            generator.manual_seed(epoch_seed)
            train_set.augment.set_random_seed(epoch_seed)  # loader workers reseed in seed_worker
            task = progress.add_task(f"epoch {epoch}/{recipe.train.epochs}", total=len(train_loader) + len(val_loader))
            tick = functools.partial(progress.advance, task)
            train_loss = _train_epoch(model, train_loader, loss_fn, optimizer, device, tick, pretrained)
            scheduler.step()
            val = _validate(model, val_loader, loss_fn, device, manifest.classes, tick)
            improved = _keep_epoch(run, model, optimizer, scheduler, state, recipe, epoch, train_loss, val)
            progress.update(task, visible=False)
            console.print(
                f"epoch {epoch:3d}  train loss {train_loss:.4f}  val loss {val['loss']:.4f}  "
                f"val ROC-AUC {_fmt(val['roc_auc'])}  val acc {val['accuracy']:.3f}{'  *best' if improved else ''}"
            )
            if state["stale"] >= patience:
                console.print(f"early stop: val {recipe.train.early_stopping.metric} flat for {patience} epochs")
                break
            if recipe.train.max_minutes and time.monotonic() - started > 60 * recipe.train.max_minutes:
                console.print(f"stopping: train.max_minutes={recipe.train.max_minutes} reached")
                break
    seconds = time.monotonic() - started
    best = _fmt(abs(state["best_metric"]))
    console.print(
        f"best epoch {state['best_epoch']} (val {recipe.train.early_stopping.metric} {best}); run in {run.root}"
    )
    best_val = next(h for h in state["history"] if h["epoch"] == state["best_epoch"])
    _warn_if_chance(console, best_val.get("roc_auc_ci"), recipe)
    return TrainResult(run.root, state["best_epoch"], state["best_metric"], state["epoch"], seconds, state["history"])


def _train_anomaly(run: RunDir, manifest: Manifest, recipe: Recipe, splits: dict, console: Console) -> TrainResult:
    """`method: anomaly`: the memory bank of the good training parts, scored on the validation split."""
    started = time.monotonic()
    goods = [i.path for i in splits["train"] if i.label != "defect"]
    val = [(i.path, int(i.label == "defect")) for i in splits["val"]]
    console.print(
        f"anomaly model on {recipe.model.architecture} patch features: {len(goods)} good training parts; "
        f"{len(val)} val / {len(splits['holdout'])} holdout images; defects in training are not used"
    )
    with progress_bar(console, unit="image") as progress:
        model, scored = fit_patchcore(recipe, manifest.classes, goods, val, console, progress)
    y, s = scored["is_defect"], scored["scores"]
    interval = roc_auc_interval(y, s)
    val_record = {
        "roc_auc": float(roc_auc_score(y, s)) if interval else float("nan"),
        "roc_auc_ci": list(interval) if interval else None,
        "n_good": int((~y).sum()),
        "n_defect": int(y.sum()),
        "memory_bank": len(model.bank),
    }
    checkpoint = {"model": model.state_dict(), "epoch": 1, "val": val_record}
    torch.save(checkpoint, run.best)
    torch.save({**checkpoint, "state": {"epoch": 1}}, run.last)
    history = [{"epoch": 1, "phase": "memory bank", **val_record}]
    run.history.write_text(json.dumps(history, indent=1), encoding="utf-8")
    seconds = time.monotonic() - started
    console.print(
        f"memory bank of {len(model.bank):,} patches; val ROC-AUC {_fmt(val_record['roc_auc'])}"
        f"{interval_text(val_record['roc_auc_ci']) or ' (no val defects: judged on good parts only)'}; "
        f"run in {run.root}"
    )
    _warn_if_chance(console, val_record["roc_auc_ci"], recipe)
    return TrainResult(run.root, 1, val_record["roc_auc"], 1, seconds, history)


def _warn_if_chance(console: Console, interval: list[float] | None, recipe: Recipe) -> None:
    """Say so when the kept model's validation ROC-AUC cannot be told from chance."""
    verdict = chance_verdict(interval, "validation")
    if verdict:
        console.print(
            f"[bold yellow]warning:[/] {verdict}; {what_to_try(recipe.model.pretrained != 'none', recipe.method)}"
        )


def _keep_epoch(run, model, optimizer, scheduler, state, recipe, epoch, train_loss, val, phase=None) -> bool:
    """Record an epoch (0: the frozen-head phase), keep `best.pt` if it improved and `last.pt` always."""
    metric = val["roc_auc"] if recipe.train.early_stopping.metric == "roc_auc" else -val["loss"]
    improved = metric > state["best_metric"]
    if improved:
        state.update(best_metric=metric, best_epoch=epoch, stale=0)
        torch.save({"model": model.state_dict(), "head": head_of(model), "epoch": epoch, "val": val}, run.best)
    else:
        state["stale"] += 1
    lr = scheduler.get_last_lr()[0] if phase is None else None
    state["history"].append({"epoch": epoch, **({"phase": phase} if phase else {}), "head": head_of(model),
                             "train_loss": train_loss, **val, "lr": lr, "best": improved})  # fmt: skip
    state["epoch"] = epoch
    _save_checkpoint(run.last, model, optimizer, scheduler, state)
    run.history.write_text(json.dumps(state["history"], indent=1), encoding="utf-8")
    return improved


def _train_epoch(model, loader, loss_fn, optimizer, device, tick, pretrained: bool) -> float:
    train_mode(model, pretrained)
    total, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        n += len(y)
        tick()
    return total / max(n, 1)


@torch.no_grad()
def _validate(model, loader, loss_fn, device, classes: list[str], tick) -> dict:
    model.eval()
    losses, probs, targets = [], [], []
    for x, y in loader:
        logits = model(x.to(device))
        losses.append(loss_fn(logits, y.to(device)).item() * len(y))
        probs.append(torch.softmax(logits, 1).cpu().numpy())
        targets.append(y.numpy())
        tick()
    p, t = np.concatenate(probs), np.concatenate(targets)
    defect = classes.index("defect")
    both = len(np.unique(t)) > 1
    interval = roc_auc_interval(t == defect, p[:, defect])
    return {
        "loss": float(sum(losses) / len(t)),
        "accuracy": float((p.argmax(1) == t).mean()),
        "roc_auc": float(roc_auc_score(t == defect, p[:, defect])) if both else float("nan"),
        "roc_auc_ci": list(interval) if interval else None,
    }


def _save_checkpoint(path: Path, model, optimizer, scheduler, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "head": head_of(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "state": state,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        },
        tmp,
    )
    tmp.replace(path)  # a kill mid-save never leaves a broken last.pt


def _resume_from(ckpt: dict, model, optimizer, scheduler) -> dict:
    """Weights, optimizer, schedule and random states back from the last checkpoint; the training state."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    np.random.set_state(ckpt["rng"]["numpy"])
    random.setstate(ckpt["rng"]["python"])
    return ckpt["state"]


def _check_splits(splits: dict, classes: list[str]) -> None:
    """Every class in `classes` must be in the train and val splits."""
    for name in ("train", "val"):
        present = {i.label for i in splits[name]}
        missing = [c for c in classes if c not in present]
        if missing:
            raise LineInspectError(
                f"the {name} split has no {', '.join(missing)} images: label more images of every class "
                f"(found {sum(len(v) for v in splits.values())} usable images)"
            )


def _check_same_plan(run: RunDir, manifest: Manifest) -> None:
    if not run.last.exists():
        raise LineInspectError(f"--resume: {run.root} has no last.pt to resume from")
    if run.read_plan()["fingerprint"] != manifest.fingerprint():
        raise LineInspectError(
            f"--resume: the data differ from the run in {run.root} (fingerprint mismatch); start a new run instead"
        )


def _kept_head(fitted: list) -> int:
    """Which phase-1 head to keep: the higher validation ROC-AUC; a tie keeps the pooled one (the last)."""
    aucs = [0.0 if val["roc_auc"] != val["roc_auc"] else val["roc_auc"] for _, _, val in fitted]
    return max(range(len(fitted)), key=lambda i: (aucs[i], i))


def _fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.4f}"
