"""Torch datasets over manifest items, through the one preprocessing."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from annotation.errors import LineInspectError
from vision.preprocess import ImageDecodeError, PreprocessSpec, load_image, to_input


class ImageDataset(Dataset):
    """(path, class index) pairs; `augment` only for training."""

    def __init__(self, samples: list[tuple[Path, int]], spec: PreprocessSpec, augment: A.Compose | None = None) -> None:
        self.samples = samples
        self.spec = spec
        self.augment = augment

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, target = self.samples[index]
        try:
            image = load_image(Path(path).read_bytes(), self.spec)
        except (OSError, ImageDecodeError) as exc:
            raise LineInspectError(f"cannot read training image {path}: {exc}") from None
        if self.augment is not None:
            image = self.augment(image=image)["image"]
        return torch.from_numpy(to_input(image, self.spec)), target


def seed_worker(worker_id: int) -> None:
    """Give each loader worker its own, reproducible augmentation stream."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    dataset = torch.utils.data.get_worker_info().dataset
    if getattr(dataset, "augment", None) is not None:
        dataset.augment.set_random_seed(seed)
