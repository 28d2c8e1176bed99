"""Adapting pretrained weights on a CPU in minutes.

Phase 1 caches what the frozen backbone sees in every training and validation image (one forward pass each)
and fits the last linear layer on those features with scikit-learn's logistic regression: seconds, and on
ImageNet features often most of the accuracy there is. Phase 2 (`train.py`'s epochs) then trains only the top
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

from vision.training.models import CompactCNN, split_model

REGULARISATION = (0.01, 0.1, 1.0)  # logistic regression C, chosen on the validation split


def backbone_units(model: nn.Module) -> list[nn.Module]:
    """The backbone's blocks from input to output: what `unfreeze_blocks` counts from the top."""
    if isinstance(model, CompactCNN):
        return list(model.features)
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
    """Fit the last linear layer of `model` on cached backbone features; returns what was chosen and its
    training loss. Two classes: the logistic regression's w.x + b becomes logit_defect - logit_normal."""
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
    return {"C": best.C, "train_loss": loss, "features": int(x_train.shape[1])}
