"""Adapting pretrained weights on a CPU in minutes.

Phase 1 caches what the frozen backbone sees in every training and validation image (one forward pass each)
and fits the head on those features: a pooled head's last linear layer with scikit-learn's logistic regression
(seconds), a patch head's MLP on the cached patch maps (a minute or two); on ImageNet features often most of the
accuracy there is. Phase 2 (`train.py`'s epochs) then trains only the top
`unfreeze_blocks` blocks and the head, at the recipe's (lower) learning rate, with augmentation; the frozen
blocks stay in eval mode so their BatchNorm statistics keep what ImageNet taught them.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader

from vision.training.models import CompactCNN, PatchClassifier, split_model

REGULARISATION = (0.01, 0.1, 1.0)  # logistic regression C, chosen on the validation split
PATCH_EPOCHS, PATCH_CHECK = 30, 10  # a patch head's phase 1: epochs on cached maps, val ROC-AUC every 10


def backbone_units(model: nn.Module) -> list[nn.Module]:
    """The backbone's blocks from input to output: what `unfreeze_blocks` counts from the top."""
    if isinstance(model, CompactCNN):
        return list(model.features)
    if isinstance(model, PatchClassifier):
        return [model.stem, *model.blocks]
    if hasattr(model, "_blocks"):  # efficientnet-lite: stem, blocks, head convolution
        return [
            nn.ModuleList([model._conv_stem, model._bn0]),
            *model._blocks,
            nn.ModuleList([model._conv_head, model._bn1]),
        ]
    if hasattr(model, "fc"):  # resnets
        return [nn.ModuleList([model.conv1, model.bn1]), model.layer1, model.layer2, model.layer3, model.layer4]
    return list(model.features)  # mobilenets, efficientnets


def freeze_backbone(model: nn.Module, unfreeze: int | str) -> int:
    """Freeze every backbone block but the top `unfreeze` ("all": none frozen); returns how many are trainable."""
    units = backbone_units(model)
    n = len(units) if unfreeze == "all" else min(int(unfreeze), len(units))
    for i, unit in enumerate(units):
        for p in unit.parameters():
            p.requires_grad_(i >= len(units) - n)
    return n


def train_mode(model: nn.Module, pretrained: bool) -> None:
    """`model.train()`, except that wholly frozen modules stay in eval mode (drop-connect off) and, for pretrained
    weights, every BatchNorm keeps its ImageNet statistics: batch statistics of a few dozen plant images would
    shift every feature the head was fitted on."""
    model.train()
    for module in model.modules():
        params = list(module.parameters(recurse=True))
        frozen = params and not any(p.requires_grad for p in params)
        if frozen or (pretrained and isinstance(module, nn.modules.batchnorm._BatchNorm)):
            module.eval()


@torch.no_grad()
def _penultimate(model: nn.Module, loader: DataLoader, device: torch.device, tick) -> tuple[np.ndarray, np.ndarray]:
    """The last linear layer's inputs for every image (eval mode, no augmentation) and their class indices."""
    features, pool, head = split_model(model)
    before_last = head[:-1]
    model.eval()
    rows, targets = [], []
    for x, y in loader:
        rows.append(before_last(torch.flatten(pool(features(x.to(device))), 1)).cpu().numpy())
        targets.append(y.numpy())
        tick()
    return np.concatenate(rows), np.concatenate(targets)


def fit_frozen_head(
    model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, defect: int, device: torch.device, tick
) -> dict:
    """Fit the last linear layer of `model` on cached backbone features; returns what was fitted (in words) and
    its training loss. Two classes: the logistic regression's w.x + b becomes logit_defect - logit_normal."""
    x_train, y_train = _penultimate(model, train_loader, device, tick)
    x_val, y_val = _penultimate(model, val_loader, device, tick)
    best, best_auc = None, -1.0
    both = len(np.unique(y_val)) > 1
    for c in REGULARISATION:
        fitted = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x_train, y_train == defect)
        auc = roc_auc_score(y_val == defect, fitted.decision_function(x_val)) if both else 0.0
        if auc > best_auc:  # ties keep the stronger regularisation
            best, best_auc = fitted, auc
    w, b = best.coef_[0], best.intercept_[0]
    last = split_model(model)[2][-1]
    with torch.no_grad():
        sign = torch.full((last.out_features, 1), -0.5 / (last.out_features - 1))
        sign[defect] = 0.5
        last.weight.copy_(sign * torch.as_tensor(w, dtype=torch.float32))
        last.bias.copy_(sign[:, 0] * float(b))
        logits = torch.from_numpy(x_train).to(device) @ last.weight.T + last.bias
        loss = nn.functional.cross_entropy(logits, torch.from_numpy(y_train).long().to(device)).item()
    return {"what": f"linear head on {x_train.shape[1]} features, C={best.C}", "train_loss": loss}


@torch.no_grad()
def _patch_maps(model: PatchClassifier, loader: DataLoader, device: torch.device, tick) -> tuple[list, np.ndarray]:
    """Both feature maps of every image (half precision, on the CPU) and their class indices."""
    model.eval()
    maps, targets = [], []
    for x, y in loader:
        fine, coarse = model.patch_features(x.to(device))
        maps.append((fine.half().cpu(), coarse.half().cpu()))
        targets.append(y.numpy())
        tick()
    return maps, np.concatenate(targets)


def fit_patch_head(
    model: PatchClassifier, train_loader: DataLoader, val_loader: DataLoader, defect: int, device: torch.device, tick
) -> dict:
    """Phase 1 of a patch head: its MLP trained on cached maps of the frozen backbone, each image's loss on its
    highest patches (classes weighted alike), the feature statistics set from the training images; the epoch count
    (10, 20 or 30) chosen on the validation split like the linear head's C."""
    train_maps, y_train = _patch_maps(model, train_loader, device, tick)
    val_maps, y_val = _patch_maps(model, val_loader, device, tick)
    channels = torch.cat(
        [torch.cat([f.float().mean((2, 3)), c.float().mean((2, 3))], 1) for f, c in train_maps]
    )  # per-image channel means: the shift; the scale from the maps' pooled variance
    model.shift.copy_(channels.mean(0)[None, :, None, None].to(device))
    second = torch.cat(
        [torch.cat([(f.float() ** 2).mean((2, 3)), (c.float() ** 2).mean((2, 3))], 1) for f, c in train_maps]
    ).mean(0)
    model.scale.copy_((1 / (second - channels.mean(0) ** 2).clamp_min(1e-6).sqrt())[None, :, None, None].to(device))
    target = torch.from_numpy(y_train == defect).float()
    weight = torch.where(target > 0, 0.5 / target.mean(), 0.5 / (1 - target.mean())) if 0 < target.mean() < 1 else None
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=1e-3, weight_decay=1e-3)
    generator = torch.Generator().manual_seed(0)
    both = len(np.unique(y_val)) > 1
    starts = np.cumsum([0] + [len(fine) for fine, _ in train_maps])
    best, best_auc, best_epochs, best_loss = None, -1.0, 0, float("nan")
    for epoch in range(1, PATCH_EPOCHS + 1):
        model.head.train()
        total = 0.0
        for i in torch.randperm(len(train_maps), generator=generator).tolist():
            fine, coarse = (m.to(device).float() for m in train_maps[i])
            rows = slice(starts[i], starts[i + 1])
            y = target[rows].to(device)
            z = model.image_logit(model.patch_logits(fine, coarse))
            w = weight[rows].to(device) if weight is not None else None
            batch_loss = nn.functional.binary_cross_entropy_with_logits(z, y, weight=w)
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.item() * len(fine)
        loss = total / len(target)
        if epoch % PATCH_CHECK == 0:
            model.head.eval()
            with torch.no_grad():
                scores = torch.cat([model.logits(model.patch_logits(f.to(device).float(), c.to(device).float()))
                                    [:, defect] for f, c in val_maps]).cpu().numpy()  # fmt: skip
            auc = roc_auc_score(y_val == defect, scores) if both else 0.0
            if auc > best_auc:  # ties keep the fewer epochs
                best, best_auc, best_epochs, best_loss = (
                    {k: v.clone() for k, v in model.head.state_dict().items()}, auc, epoch, loss
                )  # fmt: skip
    model.head.load_state_dict(best)
    return {"what": f"patch head on {model.shift.shape[1]} channels, {best_epochs} epochs", "train_loss": best_loss}
