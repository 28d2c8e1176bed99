"""The training recipe: a YAML file validated into typed settings, errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from annotation.config_loader import StrictModel as _Strict
from annotation.config_loader import builtin_configs, load_config, resolve_config
from vision.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec

RECIPES_DIR = builtin_configs() / "train"
DEFAULT_RECIPE = RECIPES_DIR / "default.yaml"


class ModelSettings(_Strict):
    name: str = "lineinspect-defect"
    architecture: str = "efficientnet_lite0"
    pretrained: str = "auto"  # auto (installed wheel or torch hub cache; an error if none) | none | a state dict file
    # patches: every 8x8-pixel patch scored, the image's score its 4 highest patches' mean (EfficientNet-Lite only);
    # pooled: the last feature map averaged into one linear layer; auto: both fitted in phase 1 (frozen head) and
    # the one with the higher validation ROC-AUC kept (EfficientNet-Lite; pooled for the rest, or without phase 1)
    head: Literal["auto", "patches", "pooled"] = "auto"


class InputSettings(_Strict):
    height: int = Field(320, ge=16, le=2048)
    width: int = Field(320, ge=16, le=2048)
    # data: height x width is a pixel budget, shaped by `train` to the training images' aspect ratio (a long
    # strip is not squeezed into a square); fixed: exactly height x width
    shape: Literal["data", "fixed"] = "data"
    color: Literal["rgb", "gray"] = "rgb"
    resize: Literal["stretch", "letterbox"] = "stretch"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def spec(self) -> PreprocessSpec:
        return PreprocessSpec(**self.model_dump(exclude={"shape"}))


class DataSettings(_Strict):
    val_fraction: float = Field(0.15, gt=0, lt=0.5)  # early stopping and model selection
    holdout_fraction: float = Field(0.15, gt=0, lt=0.5)  # threshold calibration and reported metrics


class EarlyStopping(_Strict):
    metric: Literal["roc_auc", "loss"] = "roc_auc"
    patience: int = Field(5, ge=1)


class FinetuneSettings(_Strict):
    """How pretrained weights are adapted (ignored when training from scratch, which trains every layer)."""

    frozen_head: bool = True  # phase 1: the head (model.head) fitted on cached features of the frozen backbone
    unfreeze_blocks: Annotated[int, Field(ge=0)] | Literal["all"] = 2  # phase 2: top blocks trained at train.lr


class TrainSettings(_Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    imbalance: Literal["weighted_loss", "sampler", "none"] = "weighted_loss"
    early_stopping: EarlyStopping = EarlyStopping()
    seed: int = 0
    workers: int = Field(2, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_minutes: float | None = Field(None, gt=0)  # stop after this long, keeping the best epoch
    finetune: FinetuneSettings = FinetuneSettings()


class CalibrationSettings(_Strict):
    miss_rate: float | None = Field(None, gt=0, lt=1)  # None: threshold 0.5, reported as is
    # with good parts only (anomaly method, no held-out defects): the false-reject rate the threshold is set for
    false_reject_rate: float = Field(0.01, gt=0, lt=1)
    confidence: float = Field(0.95, gt=0, lt=1)


class AnomalySettings(_Strict):
    """`method: anomaly`: a PatchCore-style memory bank of pretrained patch features of good parts."""

    memory_bank: int = Field(2048, ge=16, le=200_000)  # patches kept by greedy coreset subsampling
    max_candidates: int = Field(100_000, ge=16)  # patches the coreset is chosen from (random subset beyond this)
    projection: int = Field(128, ge=8)  # random-projection size for the coreset search only
    # with input.shape data, each side of the input's pixel budget times this (320x320 -> 512x512): a frozen
    # backbone cannot learn to see small defects, more pixels per defect let it (see vision/training/anomaly.py)
    input_scale: float = Field(1.6, ge=0.25, le=4.0)


class Recipe(_Strict):
    # classifier: supervised, needs labelled defects; anomaly: learns good parts only (defects, if any, calibrate)
    method: Literal["classifier", "anomaly"] = "classifier"
    model: ModelSettings = ModelSettings()
    input: InputSettings = InputSettings()
    data: DataSettings = DataSettings()
    train: TrainSettings = TrainSettings()
    augment: list[dict[str, Any]] = Field(default_factory=list)  # albumentations, see vision/training/augment.py
    calibration: CalibrationSettings = CalibrationSettings()
    anomaly: AnomalySettings = AnomalySettings()

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> Recipe:
        if self.data.val_fraction + self.data.holdout_fraction >= 0.8:
            raise ValueError("data.val_fraction + data.holdout_fraction must leave at least 20% for training")
        finetune = self.train.finetune
        if self.model.pretrained != "none" and not finetune.frozen_head and finetune.unfreeze_blocks == 0:
            raise ValueError("train.finetune: frozen_head false with unfreeze_blocks 0 leaves nothing to train")
        if self.method == "anomaly" and self.model.pretrained == "none":
            raise ValueError("method: anomaly needs pretrained features (model.pretrained: auto or a weights file)")
        return self


def load_recipe(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe YAML (the default one when `path` is None) and apply dotted-key overrides.

    `path` is a file, or the name of a built-in recipe (`demo`: configs/train/demo.yaml); a file wins.
    """
    path = resolve_config(path, RECIPES_DIR, "training recipe") if path else DEFAULT_RECIPE
    return load_config(Recipe, path, overrides)
