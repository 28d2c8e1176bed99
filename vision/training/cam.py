"""Class-activation maps computed inside the exported graph, so serving needs only ONNX Runtime.

Every pooled-head architecture in `vision.training.models` ends in feature maps A [N, C, h, w], a global pooling
and a head. The map is sum_k alpha_k A_k, where alpha is the gradient of the contrast logit_defect - mean(other
logits) (logit_defect - logit_normal for two classes) with respect to the pooled features:

- a head of one Linear layer (efficientnet-lite, resnets, efficientnet_b0, compact_cnn):
  alpha = W[defect] - mean(W[others]), the same for every image. After average pooling this is exact CAM:
  the map's spatial mean plus the bias difference is the contrast logit. compact_cnn max-pools; Grad-CAM's
  spatially averaged gradient is then alpha / (h * w), the same map up to scale.
- Linear -> Hardswish -> Dropout -> Linear (mobilenet_v3_small/large): Grad-CAM, with the gradient written
  out in torch ops so it exports: alpha = W1^T (hardswish'(z1) * (W2[defect] - mean(W2[others]))), per image.

A `PatchClassifier` needs none of this: its patch logits are the map (stride 8), and their maximum the score.

The map is signed (positive: evidence for the defect class) and left at the feature maps' resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from annotation.errors import LineInspectError
from vision.training.models import PatchClassifier, split_model


class WithHeatmap(nn.Module):
    """What gets exported: class probabilities (the softmax of the logits) and the defect class's activation map."""

    def __init__(self, model: nn.Module, defect_index: int) -> None:
        super().__init__()
        self.patches = model if isinstance(model, PatchClassifier) else None
        if self.patches is not None:
            return
        self.features, self.pool, self.head = split_model(model)
        layers = [m for m in self.head if not isinstance(m, nn.Flatten | nn.Dropout)]
        self.hidden: nn.Linear | None = None
        if len(layers) == 3 and isinstance(layers[0], nn.Linear) and isinstance(layers[1], nn.Hardswish):
            self.hidden = layers[0]
        elif not (len(layers) == 1 and isinstance(layers[0], nn.Linear)):
            raise LineInspectError(f"no class-activation map for a head of {[type(m).__name__ for m in layers]}")
        weight = layers[-1].weight.detach()
        others = [i for i in range(weight.shape[0]) if i != defect_index]
        self.register_buffer("contrast", weight[defect_index] - weight[others].mean(dim=0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.patches is not None:
            patches = self.patches.patch_logits(*self.patches.patch_features(x))
            return torch.softmax(self.patches.logits(patches), dim=1), patches[:, 0]
        maps = self.features(x)
        pooled = torch.flatten(self.pool(maps), 1)
        logits = self.head(pooled)
        if self.hidden is None:
            alpha = self.contrast.expand(pooled.shape[0], -1)
        else:
            alpha = (_hardswish_slope(self.hidden(pooled)) * self.contrast) @ self.hidden.weight
        heatmap = (alpha[:, :, None, None] * maps).sum(dim=1)
        return torch.softmax(logits, dim=1), heatmap


def _hardswish_slope(z: torch.Tensor) -> torch.Tensor:
    """d hardswish(z) / dz: 0 below -3, 1 above 3, (2z + 3) / 6 between."""
    return torch.where(z < -3, torch.zeros_like(z), torch.where(z > 3, torch.ones_like(z), (2 * z + 3) / 6))
