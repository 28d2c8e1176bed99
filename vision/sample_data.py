"""The built-in sample data set: synthetic industrial surfaces, normal and defective.

`lineinspect demo` and the tests need data that exists offline, renders in seconds
on a laptop CPU and behaves like a real inspection task: normal parts vary (texture,
lighting, sensor noise) and defects range from obvious to barely visible, so a
classifier has something to learn and a threshold something to trade off. Only
NumPy and OpenCV (the serving path has no torch); everything follows the seed.

Images are BGR uint8 arrays (OpenCV's order) and `size` is (height, width).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from annotation.errors import LineInspectError
from annotation.export_writer import annotation, task, write_export
from annotation.verdicts import CLASSES

TEXTURES = ("brushed", "machined", "cast", "painted", "knurled")
DEFECT_KINDS = ("scratch", "pit", "crack", "stain")
FROM_NAME = "label"
TO_NAME = "image"
JPEG_QUALITY = 92
MIN_SIZE = 64
_BOX_LEVEL = 0.2  # share of a defect mask's peak that counts as visibly changed
_PLACEMENT_TRIES = 10
MIN_VISIBILITY = 1.5  # see visibility(); chosen by eye on seed 7's defects, never on a model's results
_VISIBILITY_TRIES = 20
_TEXTURE_MARGIN = 8  # pixels around a defect whose texture it is compared with


@dataclass(frozen=True)
class SampleDefect:
    """One drawn defect; `box` is (x0, y0, x1, y1) in pixels, x1/y1 exclusive like slices."""

    kind: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class SampleImage:
    path: Path
    label: str
    defects: tuple[SampleDefect, ...]
    texture: str


@dataclass(frozen=True)
class SampleDataset:
    """`images` are in export order: images[i] is task id i + 1."""

    root: Path
    export: Path
    images: list[SampleImage]


# --- noise and lighting ---------------------------------------------------------------


def _white(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean white noise. Uniform, not Gaussian: several times cheaper to draw, and after
    blurring or JPEG encoding the difference does not show."""
    return rng.random(shape, dtype=np.float32) - 0.5


def _unit(noise: np.ndarray) -> np.ndarray:
    return noise / (noise.std() + 1e-6)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Blurred white noise rescaled to unit std: isotropic grain at scale `sigma`.

    Coarse noise is drawn on a reduced grid and upsampled, which looks the same as a
    wide blur at a fraction of the cost.
    """
    h, w = shape
    factor = max(1.0, sigma / 2)
    if factor == 1:
        noise = _white(rng, shape)
        return _unit(cv2.GaussianBlur(noise, (0, 0), sigma, borderType=cv2.BORDER_REFLECT))
    pad = round(factor)
    noise = _white(rng, (round(h / factor) + 3, round(w / factor) + 3))
    noise = cv2.GaussianBlur(noise, (0, 0), 2, borderType=cv2.BORDER_REFLECT)
    noise = cv2.resize(noise, (w + 2 * pad, h + 2 * pad), interpolation=cv2.INTER_CUBIC)
    return _unit(noise[pad : pad + h, pad : pad + w])


def _directional_noise(rng: np.random.Generator, shape: tuple[int, int], angle: float, length: float) -> np.ndarray:
    """White noise smeared along `angle`: the streaks that brushing or grinding leave.

    A grid coarse along the grain (one sample per `length` pixels) is stretched and
    rotated into place by a single affine warp.
    """
    h, w = shape
    rows = math.ceil(math.hypot(h, w)) + 2
    cols = math.ceil(rows / length) + 2
    c, s = math.cos(angle), math.sin(angle)
    cx, cy = w / 2, h / 2
    to_grid = np.array(  # output pixel -> grid position, as WARP_INVERSE_MAP expects
        [[c / length, s / length, cols / 2 - (c * cx + s * cy) / length], [-s, c, rows / 2 - (c * cy - s * cx)]],
        np.float32,
    )
    noise = cv2.warpAffine(_white(rng, (rows, cols)), to_grid, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    return _unit(noise)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def _lighting(rng: np.random.Generator, h: int, w: int, specular: bool, vignette: float) -> np.ndarray:
    """Multiplicative illumination: a tilt across the part, an optional glare band, lens falloff."""
    x, y = _grid(h, w)
    x, y = x / w - 0.5, y / h - 0.5
    phi = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.35) * (x * math.cos(phi) + y * math.sin(phi))
    if specular and rng.random() < 0.6:
        theta = rng.uniform(0, np.pi)
        across = x * math.cos(theta) + y * math.sin(theta) - rng.uniform(-0.4, 0.4)
        light += rng.uniform(0.1, 0.35) * np.exp(-(across**2) / (2 * rng.uniform(0.05, 0.2) ** 2))
    light *= 1 - vignette * (x**2 + y**2) * 2
    return light


def _metal_tint(rng: np.random.Generator) -> np.ndarray:
    """Near-grey BGR with a slight cool or warm cast, as steel and aluminium look under LEDs."""
    warmth = rng.uniform(-0.05, 0.05)
    return np.array([1 - warmth, 1, 1 + warmth], np.float32) + rng.uniform(-0.015, 0.015, 3).astype(np.float32)


_PAINTS = np.array(
    [
        [0.55, 0.55, 0.55],  # grey primer
        [0.70, 0.45, 0.20],  # blue
        [0.30, 0.55, 0.30],  # green
        [0.15, 0.70, 0.85],  # safety yellow
        [0.15, 0.15, 0.16],  # black plastic
        [0.85, 0.86, 0.84],  # white plastic
        [0.20, 0.25, 0.70],  # red
    ],
    np.float32,
)


# --- surfaces: each returns a zero-mean relief (albedo variation) and a BGR tint --------------

Surface = tuple[np.ndarray, np.ndarray]


def _brushed(rng: np.random.Generator, h: int, w: int, s: float) -> Surface:
    angle = rng.uniform(0, np.pi)
    streaks = _directional_noise(rng, (h, w), angle, rng.uniform(20, 70) * s)
    bands = _directional_noise(rng, (h, w), angle, rng.uniform(80, 160) * s)
    fine = _smooth_noise(rng, (h, w), 0.7)
    relief = rng.uniform(0.04, 0.1) * streaks + rng.uniform(0.01, 0.04) * bands + 0.015 * fine
    return relief, _metal_tint(rng)


def _machined(rng: np.random.Generator, h: int, w: int, s: float) -> Surface:
    """Turning marks: concentric tool-path rings around a centre usually off the image."""
    x, y = _grid(h, w)
    phi = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(0.4, 2.5) * max(h, w)
    cx, cy = w / 2 + dist * math.cos(phi), h / 2 + dist * math.sin(phi)
    r = np.hypot(x - cx, y - cy)
    period = rng.uniform(2.5, 7) * s
    wobble = 1.5 * _smooth_noise(rng, (h, w), 25 * s)
    rings = np.sin(2 * np.pi * r / period + wobble) + 0.4 * np.sin(2 * np.pi * r / (2.7 * period))
    depth = 1 + 0.4 * _smooth_noise(rng, (h, w), 30 * s)
    relief = rng.uniform(0.025, 0.07) * rings * depth + 0.02 * _smooth_noise(rng, (h, w), 0.8)
    return relief, _metal_tint(rng)


def _cast(rng: np.random.Generator, h: int, w: int, s: float) -> Surface:
    """Sand-blasted or cast: strong isotropic grain at several scales plus sparse glints."""
    relief = (
        rng.uniform(0.05, 0.11) * _smooth_noise(rng, (h, w), rng.uniform(0.6, 1.2))
        + rng.uniform(0.02, 0.05) * _smooth_noise(rng, (h, w), rng.uniform(3, 6) * s)
        + rng.uniform(0.01, 0.04) * _smooth_noise(rng, (h, w), 20 * s)
    )
    glints = (rng.random((h, w), dtype=np.float32) < rng.uniform(0, 0.004)).astype(np.float32)
    relief += cv2.GaussianBlur(glints, (0, 0), 0.6)
    tint = np.array([0.92, 0.97, 1.03], np.float32) + rng.uniform(-0.03, 0.03, 3).astype(np.float32)
    return relief, tint


def _painted(rng: np.random.Generator, h: int, w: int, s: float) -> Surface:
    """Paint or moulded plastic: flat, slightly muted colour, soft shading, faint orange peel."""
    shading = rng.uniform(0.03, 0.09) * _smooth_noise(rng, (h, w), rng.uniform(30, 60) * s)
    orange_peel = rng.uniform(0.008, 0.025) * _smooth_noise(rng, (h, w), rng.uniform(1.5, 3) * s)
    paint = _PAINTS[rng.integers(len(_PAINTS))] * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    paint = 0.7 * paint + 0.3 * paint.mean()
    return shading + orange_peel, paint / paint.mean()


def _knurled(rng: np.random.Generator, h: int, w: int, s: float) -> Surface:
    """Diamond knurl: pyramids between two crossing groove sets, lit from the side."""
    x, y = _grid(h, w)
    pitch = rng.uniform(7, 16) * s
    axis, half = rng.uniform(0, np.pi), math.radians(rng.uniform(25, 45))
    u = (x * math.cos(axis + half) + y * math.sin(axis + half)) / pitch
    v = (x * math.cos(axis - half) + y * math.sin(axis - half)) / pitch
    height = np.minimum(np.abs(u - np.rint(u)), np.abs(v - np.rint(v)))  # distance to the nearest groove
    height = cv2.GaussianBlur(height, (0, 0), 0.6)
    light = rng.uniform(0, 2 * np.pi)
    shade = math.cos(light) * cv2.Sobel(height, -1, 1, 0) + math.sin(light) * cv2.Sobel(height, -1, 0, 1)
    wear = np.clip(1 + 0.5 * _smooth_noise(rng, (h, w), 20 * s), 0.2, 1.5)
    relief = rng.uniform(0.06, 0.16) * _unit(shade) * wear + 0.02 * _smooth_noise(rng, (h, w), 0.8)
    return relief, _metal_tint(rng)


_SURFACES: dict[str, Callable[[np.random.Generator, int, int, float], Surface]] = {
    "brushed": _brushed,
    "machined": _machined,
    "cast": _cast,
    "painted": _painted,
    "knurled": _knurled,
}

# Camera noise: partly shared by the three channels (luminance), partly per channel (chroma).
_CHANNEL_MIX = (0.6 * np.eye(3) + 0.3 * np.ones((3, 3))).astype(np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and saturate, as a camera's ADC does."""
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def render_surface(
    rng: np.random.Generator, size: tuple[int, int], texture: str | None = None
) -> tuple[np.ndarray, str]:
    """A defect-free BGR uint8 surface of `size` (height, width) and the texture it used."""
    texture = texture or str(rng.choice(TEXTURES))
    if texture not in _SURFACES:
        raise ValueError(f"unknown texture {texture!r}; expected one of {TEXTURES}")
    h, w = size
    relief, tint = _SURFACES[texture](rng, h, w, min(h, w) / 256)
    metal = texture != "painted"
    vignette = rng.uniform(0, 0.15) if metal else rng.uniform(0.05, 0.35)
    lum = rng.uniform(0.3, 0.75) * 255 * _lighting(rng, h, w, metal, vignette) * (1 + rng.uniform(0.6, 1.5) * relief)
    image = cv2.merge([lum * float(t) for t in tint])
    noise = cv2.transform(_white(rng, (h, w, 3)), _CHANNEL_MIX)
    image += rng.uniform(3, 12) * noise
    return _to_uint8(image), texture


# --- defects: each returns strokes, a mask (peak ~1) and what it does where the mask is ---------

Effect = Callable[[np.ndarray, np.ndarray], None]
Stroke = tuple[np.ndarray, Effect]


def _darken(amount: float) -> Effect:
    def apply(img: np.ndarray, mask: np.ndarray) -> None:
        img *= (1 - amount * mask)[..., None]

    return apply


def _brighten(amount: float) -> Effect:
    def apply(img: np.ndarray, mask: np.ndarray) -> None:
        img += (255 - img) * (amount * mask)[..., None]

    return apply


def _tint(amount: float, colour: np.ndarray) -> Effect:
    def apply(img: np.ndarray, mask: np.ndarray) -> None:
        img += (colour - img) * (amount * mask)[..., None]

    return apply


def _strength(rng: np.random.Generator, low: float, high: float) -> float:
    """Contrast between `low` and `high`, skewed towards faint: lines see more faint defects than gross ones."""
    return low + (high - low) * rng.random() ** 1.3


def _centre(rng: np.random.Generator, h: int, w: int, margin: float) -> tuple[float, float]:
    mx, my = min(margin, w / 3), min(margin, h / 3)
    return rng.uniform(mx, w - mx), rng.uniform(my, h - my)


def _window(h: int, w: int, cx: float, cy: float, reach: float) -> tuple[slice, slice]:
    """Rows and columns within `reach` of (cx, cy): where a compact defect can change pixels."""
    return (
        slice(max(0, math.floor(cy - reach)), min(h, math.ceil(cy + reach) + 1)),
        slice(max(0, math.floor(cx - reach)), min(w, math.ceil(cx + reach) + 1)),
    )


def _local_grid(rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(
        np.arange(cols.start, cols.stop, dtype=np.float32), np.arange(rows.start, rows.stop, dtype=np.float32)
    )


def _polyline_mask(shape: tuple[int, int], pts: np.ndarray, weights: np.ndarray, thickness: int) -> np.ndarray:
    """Anti-aliased polyline whose intensity follows `weights` (one per segment), in 0..1."""
    canvas = np.zeros(shape, np.uint8)
    fixed = np.rint(pts * 16).astype(np.int32)
    for a, b, wgt in zip(fixed[:-1], fixed[1:], weights, strict=False):
        cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), int(255 * wgt), thickness, cv2.LINE_AA, 4)
    return cv2.GaussianBlur(canvas.astype(np.float32) / 255, (0, 0), 0.5)


def _scratch(rng: np.random.Generator, h: int, w: int, s: float) -> list[Stroke]:
    """Thin straight or slightly bent line that fades at both ends, bright or dark."""
    length = rng.uniform(20, 128) * s
    angle = rng.uniform(0, np.pi)
    along = np.array([math.cos(angle), math.sin(angle)], np.float32)
    across = np.array([-along[1], along[0]], np.float32)
    t = np.linspace(-0.5, 0.5, 25, dtype=np.float32)[:, None]
    bend = rng.uniform(-0.12, 0.12) * length
    pts = np.array(_centre(rng, h, w, length / 2), np.float32) + t * length * along + (1 - 4 * t**2) * bend * across
    fade = np.sin(np.pi * (t[:-1, 0] + t[1:, 0] + 1) / 2) ** 0.5
    mask = _polyline_mask((h, w), pts, fade, 2 if rng.random() < 0.2 else 1)
    bright = rng.random() < 0.5
    return [(mask, _brighten(_strength(rng, 0.15, 0.7)) if bright else _darken(_strength(rng, 0.15, 0.6)))]


def _pit(rng: np.random.Generator, h: int, w: int, s: float) -> list[Stroke]:
    """Small dark hole with a highlight on the rim facing the light."""
    radius = max(1.5, rng.uniform(1.5, 6) * s)
    cx, cy = _centre(rng, h, w, radius + 3)
    centre16 = (round(cx * 16), round(cy * 16))
    core = np.zeros((h, w), np.uint8)
    cv2.circle(core, centre16, round(radius * 16), 255, -1, cv2.LINE_AA, 4)
    core = cv2.GaussianBlur(core.astype(np.float32) / 255, (0, 0), max(0.5, 0.25 * radius))
    ring = np.zeros((h, w), np.uint8)
    cv2.circle(ring, centre16, round((radius + 1) * 16), 255, max(1, round(radius * 0.4)), cv2.LINE_AA, 4)
    rows, cols = _window(h, w, cx, cy, 2 * radius + 4)
    x, y = _local_grid(rows, cols)
    light = rng.uniform(0, 2 * np.pi)
    rim = np.zeros((h, w), np.float32)
    rim[rows, cols] = ring[rows, cols] / 255 * np.clip(np.cos(np.arctan2(y - cy, x - cx) - light), 0, 1)
    rim = cv2.GaussianBlur(rim, (0, 0), 0.6)
    return [(core, _darken(_strength(rng, 0.25, 0.85))), (rim, _brighten(_strength(rng, 0.1, 0.6)))]


def _walk(rng: np.random.Generator, start: np.ndarray, heading: float, steps: int, step: float) -> np.ndarray:
    """Jagged path that zigzags around `heading` but keeps going that way, as cracks run."""
    kicks = rng.normal(0, 0.5, steps)
    deviations = np.zeros(steps)
    for i in range(1, steps):
        deviations[i] = 0.6 * deviations[i - 1] + kicks[i]
    angles = heading + deviations
    moves = step * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return (start + np.vstack([np.zeros((1, 2)), np.cumsum(moves, axis=0)])).astype(np.float32)


def _crack(rng: np.random.Generator, h: int, w: int, s: float) -> list[Stroke]:
    """Dark jagged random-walk line with up to two side branches that thin out."""
    steps, step = int(rng.integers(12, 40)), rng.uniform(2, 3.5) * s
    heading = rng.uniform(0, 2 * np.pi)
    span = steps * step * np.array([math.cos(heading), math.sin(heading)], np.float32)
    main = _walk(rng, np.array(_centre(rng, h, w, steps * step / 2), np.float32) - span / 2, heading, steps, step)
    paths = [main]
    for _ in range(rng.integers(0, 3)):
        fork = main[rng.integers(steps // 4, steps)]
        side = heading + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2)
        paths.append(_walk(rng, fork, side, int(rng.integers(4, max(5, steps // 2))), step))
    mask = np.zeros((h, w), np.float32)
    for i, path in enumerate(paths):
        weights = np.linspace(1, 0.4, len(path) - 1) if i else np.ones(len(path) - 1)
        mask = np.maximum(mask, _polyline_mask((h, w), path, weights, 1))
    return [(mask, _darken(_strength(rng, 0.25, 0.85)))]


_STAIN_COLOURS = np.array(
    [
        [30, 60, 130],  # rust
        [35, 35, 40],  # oil
        [225, 230, 230],  # dried residue
        [140, 135, 95],  # coolant
        [60, 90, 100],  # discoloration
    ],
    np.float32,
)


def _stain(rng: np.random.Generator, h: int, w: int, s: float) -> list[Stroke]:
    """Soft irregular blob tinting the surface: rust, oil, residue, coolant."""
    rx = rng.uniform(8, 36) * s
    ry = rx * rng.uniform(0.45, 1)
    cx, cy = _centre(rng, h, w, rx)
    rows, cols = _window(h, w, cx, cy, 1.6 * rx + 3)
    x, y = _local_grid(rows, cols)
    theta = rng.uniform(0, np.pi)
    u = (x - cx) * math.cos(theta) + (y - cy) * math.sin(theta)
    v = (y - cy) * math.cos(theta) - (x - cx) * math.sin(theta)
    lumpy = 1 + 0.5 * _smooth_noise(rng, u.shape, max(2.0, ry / 3))
    field = np.clip((np.exp(-((u / rx) ** 2 + (v / ry) ** 2)) * lumpy - 0.35) / 0.3, 0, 1)
    mask = np.zeros((h, w), np.float32)
    mask[rows, cols] = field * field * (3 - 2 * field)  # smoothstep: soft but defined edge
    mask = cv2.GaussianBlur(mask, (0, 0), max(1, rx / 8))
    colour = _STAIN_COLOURS[rng.integers(len(_STAIN_COLOURS))]
    return [(mask, _tint(_strength(rng, 0.1, 0.6), colour))]


_DEFECTS: dict[str, Callable[[np.random.Generator, int, int, float], list[Stroke]]] = {
    "scratch": _scratch,
    "pit": _pit,
    "crack": _crack,
    "stain": _stain,
}


def _span(along: np.ndarray) -> slice:
    hits = np.flatnonzero(along)
    return slice(int(hits[0]), int(hits[-1]) + 1)


def render_defect(image: np.ndarray, rng: np.random.Generator, kind: str | None = None) -> SampleDefect:
    """Draw one defect (random kind unless given) into the BGR uint8 `image` in place.

    Returns its kind and the box of the pixels it visibly changed. A defect whose contrast
    against the surface around it stays under MIN_VISIBILITY is drawn again (new size, place
    and strength; the most visible of _VISIBILITY_TRIES is kept): one a person could not see on
    the part is not a defect anybody would label. Only the rows and columns the defect touches
    are converted and written back, which keeps it cheap.
    """
    kind = kind or str(rng.choice(DEFECT_KINDS))
    if kind not in _DEFECTS:
        raise ValueError(f"unknown defect kind {kind!r}; expected one of {DEFECT_KINDS}")
    h, w = image.shape[:2]
    best: tuple[float, tuple[slice, slice], np.ndarray, np.ndarray] | None = None
    for _ in range(_VISIBILITY_TRIES):
        strokes = _DEFECTS[kind](rng, h, w, min(h, w) / 256)
        union = np.maximum.reduce([mask for mask, _ in strokes])
        if union.max() == 0:  # at small sizes a thin stroke can rasterise to nothing
            continue
        rows, cols = _span(union.any(axis=1)), _span(union.any(axis=0))
        patch = image[rows, cols].astype(np.float32)
        for mask, effect in strokes:
            effect(patch, mask[rows, cols])
        drawn = _to_uint8(patch)
        score = visibility(image, drawn, (rows, cols))
        if best is None or score > best[0]:
            best = (score, (rows, cols), drawn, union)
        if score >= MIN_VISIBILITY:
            break
    if best is None:
        raise RuntimeError(f"a {kind} could not be drawn on a {h}x{w} image")
    _, window, drawn, union = best
    image[window] = drawn
    ys, xs = np.nonzero(union >= _BOX_LEVEL * union.max())
    return SampleDefect(kind, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def visibility(image: np.ndarray, drawn: np.ndarray, window: tuple[slice, slice]) -> float:
    """How far a defect drawn into `window` stands out from the surface: the colour change
    (CIELAB distance) of its most changed pixels over the surface's own fine texture
    (mean absolute departure from a blur) around it. Under about 1.5 a person no longer
    sees it at full size."""
    rows, cols = window
    before = cv2.cvtColor(image[rows, cols], cv2.COLOR_BGR2LAB).astype(np.float32)
    after = cv2.cvtColor(drawn, cv2.COLOR_BGR2LAB).astype(np.float32)
    change = np.linalg.norm(after - before, axis=2)
    signal = float(change[change >= 0.5 * change.max()].mean()) if change.max() > 0 else 0.0
    pad = _TEXTURE_MARGIN
    around = image[max(0, rows.start - pad) : rows.stop + pad, max(0, cols.start - pad) : cols.stop + pad]
    grey = cv2.cvtColor(around, cv2.COLOR_BGR2GRAY).astype(np.float32)
    texture = float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 4)).mean())
    return signal / max(texture, 0.5)


# --- the data set ----------------------------------------------------------------------------


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _add_defects(image: np.ndarray, rng: np.random.Generator) -> tuple[SampleDefect, ...]:
    """1-3 defects that do not overlap, so each box holds exactly one defect."""
    defects: list[SampleDefect] = []
    for _ in range(int(rng.integers(1, 4))):
        for _ in range(_PLACEMENT_TRIES):
            candidate = image.copy()
            defect = render_defect(candidate, rng)
            if not any(_overlaps(defect.box, d.box) for d in defects):
                image[:] = candidate
                defects.append(defect)
                break
    return tuple(defects)


def _write_sample(
    root: Path, label: str, index: int, size: tuple[int, int], seed: int, textures: Sequence[str]
) -> SampleImage:
    # One generator per image, so an image depends only on (seed, label, index), not on the counts.
    rng = np.random.default_rng([seed, CLASSES.index(label), index])
    image, texture = render_surface(rng, size, str(rng.choice(textures)))
    defects = _add_defects(image, rng) if label == "defect" else ()
    path = root / "images" / label / f"{label}_{index:04d}.jpg"
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {path.name}")
    path.write_bytes(data.tobytes())
    return SampleImage(path, label, defects, texture)


def _task(task_id: int, sample: SampleImage, root: Path) -> dict:
    reference = f"/data/local-files/?d={sample.path.relative_to(root).as_posix()}"
    meta = {"defects": [{"kind": d.kind, "box": list(d.box)} for d in sample.defects]} if sample.defects else None
    return task(
        task_id, reference, [annotation(task_id, sample.label, from_name=FROM_NAME, to_name=TO_NAME)], meta=meta
    )


_README = """\
Sample data set generated by lineinspect (vision/sample_data.py): {n_normal} normal and {n_defect} defect \
{width}x{height} JPEG images of synthetic industrial surfaces ({textures}) \
with lighting gradients and sensor noise, seed {seed}. Defect images carry 1-3 scratches, pits, cracks or \
stains, some subtle. export.json is a Label Studio full JSON export (choices "{from_name}" on "{to_name}", \
labels normal/defect) whose tasks reference the images as Label Studio local-files storage does, with this \
folder as the document root; each defect task's meta lists the defects' kinds and pixel boxes \
(x0, y0, x1, y1; x1 and y1 exclusive).
"""


def generate(
    out_dir: Path,
    n_normal: int = 300,
    n_defect: int = 300,
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
    textures: Sequence[str] = TEXTURES,
) -> SampleDataset:
    """Write the sample images, a Label Studio export of them and a README under `out_dir`.

    `textures` picks the surfaces drawn from; one texture is one product, as on a real line.
    """
    h, w = size
    unknown = sorted(set(textures) - set(TEXTURES))
    if unknown or not textures:
        choices = ", ".join(TEXTURES)
        raise LineInspectError(f"unknown sample textures {unknown or '(none given)'}; choose from {choices}")
    if h < MIN_SIZE or w < MIN_SIZE:
        raise LineInspectError(f"sample image size {h}x{w} is too small; use at least {MIN_SIZE}x{MIN_SIZE}")
    if n_normal < 0 or n_defect < 0 or seed < 0:
        raise LineInspectError("sample image counts and the seed must be zero or positive")
    root = Path(out_dir)
    for label in CLASSES:
        (root / "images" / label).mkdir(parents=True, exist_ok=True)
    counts = {"normal": n_normal, "defect": n_defect}
    jobs = [(label, i) for label in CLASSES for i in range(counts[label])]
    # Images are independent (one generator each), so threads give the same bytes in any order;
    # NumPy and OpenCV release the GIL for the heavy work.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        samples = list(pool.map(lambda job: _write_sample(root, *job, size, seed, textures), jobs))
    order = np.random.default_rng([seed, len(CLASSES)]).permutation(len(samples))
    images = [samples[i] for i in order]
    export = write_export([_task(i + 1, s, root) for i, s in enumerate(images)], root / "export.json")
    readme = _README.format(
        n_normal=n_normal,
        n_defect=n_defect,
        width=w,
        height=h,
        textures=", ".join(textures),
        seed=seed,
        from_name=FROM_NAME,
        to_name=TO_NAME,
    )
    (root / "README.txt").write_text(readme, encoding="utf-8")
    return SampleDataset(root, export, images)
