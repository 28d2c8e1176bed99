"""Anomaly detection from good parts only (`method: anomaly`): a PatchCore-style memory bank.

Every image becomes a grid of patch features: a pretrained backbone's feature maps at strides 8, 16 and 32 (the last
block at each), each averaged over its 3x3 neighbourhood, brought to the stride-16 grid and concatenated, each feature
then standardised with the good training patches' mean and spread (so the 320 coarse channels do not outvote the 40
fine ones). Training keeps, of the patches of the training split's good parts, a coreset (greedy k-center: the patches
that cover all others best), small enough to search inside the exported graph. The good parts are also seen as the
recipe's flips and quarter turns would show them (`augment`): what the recipe calls the same part is then also near
the bank. A patch's anomaly is its distance to the nearest bank patch; the image's score is the mean of its most
anomalous 2% of patches (at least one), mapped to [0, 1] so that 0.5 is the largest score of the validation split's
good parts (thresholds are then calibrated as for classifiers). The map of patch distances, less a typical good
part's score, is the `heatmap` output. (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022.)

Chosen on two development sets, casting photos of the train folder and generated sample data, never on a
benchmark's holdout: a bank with the flipped views, ROC-AUC 0.894 -> 0.923 on casting (train folder: 200 good parts
in the bank, 150 + 150 scored) and 0.897 -> 0.912 on the sample data; the top-2% mean instead of the single largest
patch 0.923 -> 0.958 and 0.912 -> 0.913; a bank of 2048 instead of 4096, 0.958 -> 0.966 and 0.913 -> 0.922 (the
larger coreset keeps the good parts' own oddities). Later (2026-12-06, 200 good parts of each set in the bank,
150 + 150 others scored): standardised features 0.960 -> 0.964 on casting and 0.941 -> 0.949 on the (regenerated,
all defects visible) sample data; the stride-8 maps beside them 0.966 and 0.948; strides 8 + 16 alone 0.935 and
0.890 (the stride-32 context matters most). Tried and dropped there: EfficientNet-Lite2 (0.959, 0.950
standardised), a bank of 4096 (worse on both), of 1024, the mean of the 3 nearest, the top 1%, 3% or 5% (each
better on one set, worse on the other), and SimpleNet's discriminator trained against noised good patches (0.930
and 0.938 at its best noise). Later still (2026-12-07; sample data of seed 0 at 320 px, 350 good and 150 defects):
more pixels, `anomaly.input_scale` times each side of the input budget (see train.py): 1.0, 1.2, 1.4, 1.6 gave
0.966, 0.977, 0.979, 0.992 on casting and 0.924, 0.929, 0.928, 0.924 on the sample data; 1.6 kept (best mean), at
about 2.5 times the time per image. Tried there and dropped: the stride-8 grid instead of stride 16 (0.965, 0.927);
the score less the image's own median patch distance (casting 0.820). At 512 px (same sets): each image's
channels standardised, 0.989 and 0.880; its channel means removed, 0.988 and 0.939; a bank of 4096, 0.993 and
0.928, at twice the search (against 0.992 and 0.924): none kept. On the sample data alone (seed 0, 512 px, 100 good
and 150 defects scored): the score less the mean score of the 3 or 10 good parts nearest by their mean patch
feature (a baseline per product) 0.930-0.934 against 0.916, short of the gap to the classifier: not kept.
Later (2026-12-07, same sample data, 200 good parts in the bank, 150 + 150 scored, 512 px; base 0.924, stains
0.881 and the grainy cast surface 0.880 the weakest; the goods scored highest are machined rings whose centre is in
view and specular streaks, rare among good parts, not defect-like): none kept. Low-level features beside the 472
(each cell's RGB mean and spread, the stride-2 and stride-4 blocks' means or magnitudes, weight 1 or 3 after
standardising) 0.888-0.921; no coreset limit (banks of 8192 and 16384) 0.924 and 0.922, so the bank is not what
limits; a patch's distance divided by its nearest bank patch's own neighbour radius (local density, as LOF) 0.837-0.925;
1 or 3 copies of each good part through the recipe's full augmentation added to the bank 0.923 and 0.914.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from annotation.errors import LineInspectError
from vision.training.augment import VIEWS
from vision.training.data import ImageDataset
from vision.training.models import build_model

FEATURE_STRIDES = (8, 16, 32)  # the backbone's last block at each of these strides is tapped
TOP_SHARE = 0.02  # the image score: mean distance of this share of its patches, the most anomalous ones


class PatchFeatures(nn.Module):
    """Patch features [N, D, H/16, W/16] of a pretrained EfficientNet-Lite or ResNet (not yet standardised)."""

    def __init__(self, backbone: nn.Module, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.backbone = backbone
        if hasattr(backbone, "_blocks"):
            self.taps = self._lite_taps(input_size)
        elif not hasattr(backbone, "layer3"):
            raise LineInspectError(
                "method: anomaly needs an efficientnet_lite* or resnet* backbone (model.architecture)"
            )

    def _lite_blocks(self, x: torch.Tensor, blocks: int):
        """The outputs of the first `blocks` blocks of an EfficientNet-Lite, in order."""
        b = self.backbone
        x = b._swish(b._bn0(b._conv_stem(x)))
        for block in b._blocks[:blocks]:
            x = block(x)
            yield x

    @torch.no_grad()
    def _lite_taps(self, input_size: tuple[int, int]) -> tuple[int, ...]:
        """Indices of the last block at each of FEATURE_STRIDES, found by running a blank image."""
        was_training = self.backbone.training
        self.backbone.eval()
        blocks = self._lite_blocks(torch.zeros(1, 3, *input_size), len(self.backbone._blocks))
        last = {round(input_size[0] / x.shape[-2]): i for i, x in enumerate(blocks)}
        self.backbone.train(was_training)
        return tuple(last[s] for s in FEATURE_STRIDES)

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The backbone's feature maps at FEATURE_STRIDES."""
        b = self.backbone
        if hasattr(b, "_blocks"):
            return [out for i, out in enumerate(self._lite_blocks(x, self.taps[-1] + 1)) if i in self.taps]
        x2 = b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x))))))  # a ResNet's layers 2, 3, 4: strides 8, 16, 32
        x3 = b.layer3(x2)
        return [x2, x3, b.layer4(x3)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [F.avg_pool2d(m, 3, stride=1, padding=1, count_include_pad=False) for m in self.maps(x)]
        grid = maps[FEATURE_STRIDES.index(16)].shape[-2:]  # from stride 8, bilinear at half size is each 2x2's mean
        return torch.cat(
            [m if m.shape[-2:] == grid else F.interpolate(m, size=grid, mode="bilinear", align_corners=False)
             for m in maps],
            dim=1,
        )  # fmt: skip


class PatchCore(nn.Module):
    """What gets exported: probabilities [N, 2] (P(defect) from the image score) and the anomaly map [N, h, w]."""

    def __init__(self, features: PatchFeatures, bank: torch.Tensor, defect_index: int) -> None:
        super().__init__()
        self.features = features
        self.defect_index = defect_index
        self.register_buffer("bank", bank)  # standardised patch features
        self.register_buffer("center", torch.zeros(bank.shape[1]))  # the good training patches' mean, per feature
        self.register_buffer("spread", torch.ones(bank.shape[1]))  # and their standard deviation
        self.register_buffer("shift", torch.tensor(0.0))  # image score mapped to P = 0.5
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("floor", torch.tensor(0.0))  # a typical good part's score: the heatmap's zero

    def anomaly_map(self, x: torch.Tensor) -> torch.Tensor:
        """Distance of every patch to its nearest bank patch, [N, h, w]."""
        p = self.features(x)
        q = (p.flatten(2).transpose(1, 2) - self.center) / self.spread  # [N, hw, D]
        d2 = (q * q).sum(dim=-1, keepdim=True) - 2 * q @ self.bank.T + (self.bank * self.bank).sum(dim=1)
        return d2.amin(dim=-1).clamp_min(0).sqrt().unflatten(1, p.shape[-2:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and the heatmap: patch distances less a typical good part's score, so that, as with
        class-activation maps, positive is evidence of a defect."""
        maps = self.anomaly_map(x)
        p = torch.sigmoid((image_score(maps) - self.shift) / self.scale)
        columns = [1 - p, p] if self.defect_index == 1 else [p, 1 - p]
        return torch.stack(columns, dim=1), maps - self.floor


def image_score(maps: torch.Tensor) -> torch.Tensor:
    """[N]: the mean of each map's TOP_SHARE largest patch distances (at least one patch)."""
    flat = maps.flatten(1)
    return flat.topk(max(1, round(TOP_SHARE * flat.shape[1])), dim=1).values.mean(dim=1)


def views(augment: list[dict], input_size: tuple[int, int]) -> list[tuple[bool, int]]:
    """The (flip left-right, quarter turns) views of a part that the recipe's `augment` says are the same part:
    every combination of the flips and quarter turns it names (quarter turns only for square inputs), identity
    first."""
    square = input_size[0] == input_size[1]
    generators = [g for step in augment for name in step for g in VIEWS.get(name, []) if square or g[1] % 2 == 0]
    found = [(False, 0)]
    for view in found:  # closure: grows while new views turn up (at most the 8 of a square)
        for flip, turns in generators:
            # flipping after v = (f, t) gives (not f, -t); turning after it gives (f, t + turns)
            combined = (view[0] != flip, ((-view[1] if flip else view[1]) + turns) % 4)
            if combined not in found:
                found.append(combined)
    return found


def _view(x: torch.Tensor, view: tuple[bool, int]) -> torch.Tensor:
    flip, turns = view
    return torch.rot90(torch.flip(x, [3]) if flip else x, turns, [2, 3])


def build_patchcore(recipe, classes: list[str], bank_shape: tuple[int, int] | None = None, console=None) -> PatchCore:
    """A PatchCore of the recipe's backbone: ImageNet weights when training (`bank_shape` None), an empty bank of
    `bank_shape` to load a trained state into when exporting."""
    size = (recipe.input.height, recipe.input.width)
    pretrained = recipe.model.pretrained if bank_shape is None else "none"
    backbone = build_model(recipe.model.architecture, len(classes), pretrained, console or Console(quiet=True), size)
    features = PatchFeatures(backbone, size)
    return PatchCore(features, torch.zeros(bank_shape or (1, 1)), classes.index("defect")).eval()


def greedy_coreset(patches: torch.Tensor, k: int, projection: int, seed: int) -> torch.Tensor:
    """Indices of `k` patches chosen by greedy k-center (each next one the farthest from those chosen),
    measured in a random projection to `projection` dimensions (distances kept up to a small factor)."""
    if k >= len(patches):
        return torch.arange(len(patches))
    generator = torch.Generator().manual_seed(seed)
    z = patches
    if patches.shape[1] > projection:
        z = patches @ (torch.randn(patches.shape[1], projection, generator=generator) / math.sqrt(projection))
    squares = (z * z).sum(dim=1)
    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = torch.randint(len(z), (1,), generator=generator)
    nearest = torch.full((len(z),), float("inf"))
    for i in range(1, k + 1):
        c = chosen[i - 1]
        nearest = torch.minimum(nearest, squares - 2 * (z @ z[c]) + squares[c])  # no [n, d] temporary
        if i < k:
            chosen[i] = torch.argmax(nearest)
    return chosen


@torch.no_grad()
def fit_patchcore(
    recipe, classes: list[str], goods: list, val: list[tuple], console: Console, progress
) -> tuple[PatchCore, dict]:
    """Bank from the good training images, score mapping from the validation split; returns the model and
    the validation scores (good and, when labelled, defect)."""
    model = build_patchcore(recipe, classes, console=console)
    spec = recipe.input.spec()
    settings = recipe.anomaly
    loader_args = {"batch_size": recipe.train.batch_size, "num_workers": recipe.train.workers, "shuffle": False}
    rng = np.random.default_rng(recipe.train.seed)
    started = time.monotonic()
    seen = views(recipe.augment, (recipe.input.height, recipe.input.width))
    per_image = max(1, math.ceil(settings.max_candidates / (len(goods) * len(seen))))  # candidates of each view
    kept = []
    task = progress.add_task("patch features", total=len(goods))
    for x, _ in DataLoader(ImageDataset([(p, 0) for p in goods], spec), **loader_args):
        for view in seen:
            p = model.features(_view(x, view)).flatten(2).transpose(1, 2)  # [n, hw, D]
            for patches in p:
                take = rng.choice(len(patches), min(per_image, len(patches)), replace=False)
                kept.append(patches[np.sort(take)])
        progress.advance(task, len(x))
    progress.update(task, visible=False)
    candidates = torch.cat(kept)
    console.print(
        f"{len(candidates):,} candidate patches of {candidates.shape[1]} features from {len(goods)} good parts "
        f"({len(seen)} views each, from the recipe's flips and turns) in {time.monotonic() - started:.0f} s; "
        f"choosing a coreset of {min(settings.memory_bank, len(candidates)):,}"
    )
    model.center, model.spread = candidates.mean(dim=0), candidates.std(dim=0).clamp_min(1e-6)
    candidates = (candidates - model.center) / model.spread
    chosen = greedy_coreset(candidates, settings.memory_bank, settings.projection, recipe.train.seed)
    model.bank = candidates[chosen].clone()

    scores, is_defect = [], []
    for x, y in DataLoader(ImageDataset(val, spec), **loader_args):
        scores.append(image_score(model.anomaly_map(x)))
        is_defect.append(y.bool())
    s, d = torch.cat(scores), torch.cat(is_defect)
    good = s[~d]
    if len(good) == 0:
        raise LineInspectError("method: anomaly needs good parts in the validation split: label more good parts")
    top, middle = good.max(), good.median()
    model.shift.fill_(float(top))
    model.scale.fill_(float(max(top - middle, 1e-6)) / 4)  # the median good part maps to P ~ 0.02
    model.floor.fill_(float(middle))
    return model, {"scores": s.numpy(), "is_defect": d.numpy()}
