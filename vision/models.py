"""Classifiers: torchvision architectures with a fresh head, or the project's compact CNN.

Pretrained weights come from local files only.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from rich.console import Console
from torch import nn

from annotation.errors import LineInspectError

# architecture -> torchvision weights enum holding the ImageNet checkpoint's file name
ARCHITECTURES = {
    "mobilenet_v3_small": "MobileNet_V3_Small_Weights",
    "mobilenet_v3_large": "MobileNet_V3_Large_Weights",
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "efficientnet_b0": "EfficientNet_B0_Weights",
}


COMPACT_CNN = "compact_cnn"


class CompactCNN(nn.Module):
    """A small VGG-style network for small local defects, trained from scratch on a CPU.

    torchvision's architectures shrink the image 4x in their stem and average over the
    whole image at the end, which dilutes a scratch or a pit a few pixels wide: from
    scratch on a few hundred images they stay at chance for many epochs. This keeps full
    resolution for its first convolutions and takes the global maximum of its feature
    maps, so one strong local response decides the class.
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in widths:
            for _ in range(2):
                layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def cached_weights_path(architecture: str) -> Path:
    """Where torch.hub would have cached the ImageNet checkpoint (we never download it)."""
    weights = getattr(torchvision.models, ARCHITECTURES[architecture]).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def build_model(
    architecture: str, num_classes: int, pretrained: str = "auto", console: Console | None = None
) -> nn.Module:
    """A classifier with a `num_classes` head.

    `pretrained`: "auto" loads ImageNet weights from the torch hub cache when present,
    "none" starts from scratch, anything else is a path to a state dict file (for
    `compact_cnn`, one saved from an earlier run: it has no ImageNet weights).
    """
    if architecture not in (*ARCHITECTURES, COMPACT_CNN):
        choices = ", ".join((COMPACT_CNN, *ARCHITECTURES))
        raise LineInspectError(f"model.architecture {architecture!r} unknown; choose one of {choices}")
    console = console or Console(stderr=True)
    if architecture == COMPACT_CNN:
        model = CompactCNN(num_classes)
        source = None if pretrained in ("auto", "none") else _weights_source(architecture, pretrained)
        if source is not None:
            _load_weights(model, source, architecture)
            console.print(f"initial weights: {source}")
        return model
    model = getattr(torchvision.models, architecture)(weights=None)
    source = _weights_source(architecture, pretrained)
    if source is None:
        console.print(f"[yellow]notice:[/] no pretrained weights for {architecture}: training from scratch")
    else:
        _load_weights(model, source, architecture)
        console.print(f"pretrained weights: {source}")
    _replace_head(model, num_classes)
    _fast_batchnorm_statistics(model)
    return model


def _fast_batchnorm_statistics(model: nn.Module) -> None:
    """Use PyTorch's default BatchNorm momentum (0.1).

    torchvision's MobileNetV3 and EfficientNet use 0.01, tuned for long ImageNet
    runs; on a few hundred plant images the running statistics then lag far
    behind the weights, and the model in eval mode predicts one class for everything.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1


def _load_weights(model: nn.Module, source: Path, architecture: str) -> None:
    state = torch.load(source, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise LineInspectError(f"weights file {source} does not fit {architecture}: {str(exc)[:300]}") from None


def _weights_source(architecture: str, pretrained: str) -> Path | None:
    if pretrained == "none":
        return None
    if pretrained == "auto":
        path = cached_weights_path(architecture)
        return path if path.is_file() else None
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise LineInspectError(f"model.pretrained: weights file not found: {path}")
    return path


def _replace_head(model: nn.Module, num_classes: int) -> None:
    if hasattr(model, "fc"):  # resnets
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:  # mobilenets, efficientnets: classifier is a Sequential ending in Linear
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, num_classes)


class WithSoftmax(nn.Module):
    """What gets exported: class probabilities, so every consumer reads the same numbers."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)
