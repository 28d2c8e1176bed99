"""The one preprocessing: image bytes to model input.

Evaluation, the export parity check, serving and batch inspection all call
`preprocess`; training calls `load_image`, augments, then `to_input`. Nothing
here imports torch, so the serving path stays torch-free.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from annotation.errors import LineInspectError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_MAX_PIXELS = 50_000_000  # larger images are refused (decompression bombs)

_REDUCED_FLAGS = {
    ("rgb", 2): cv2.IMREAD_REDUCED_COLOR_2,
    ("rgb", 4): cv2.IMREAD_REDUCED_COLOR_4,
    ("rgb", 8): cv2.IMREAD_REDUCED_COLOR_8,
    ("gray", 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    ("gray", 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    ("gray", 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


class ImageDecodeError(LineInspectError):
    """The bytes are not an image this product can read."""


class PixelLimitError(ImageDecodeError):
    """The image has more pixels than allowed (a decompression bomb, or simply too large)."""


@dataclass(frozen=True)
class PreprocessSpec:
    """How an image becomes model input; stored in the model's metadata."""

    height: int = 224
    width: int = 224
    color: Literal["rgb", "gray"] = "rgb"  # gray: decoded as gray, replicated to 3 channels
    resize: Literal["stretch", "letterbox"] = "stretch"
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.height < 16 or self.width < 16:
            raise LineInspectError(f"input size {self.height}x{self.width} is too small (min 16x16)")
        if self.color not in ("rgb", "gray"):
            raise LineInspectError(f"color must be 'rgb' or 'gray', not {self.color!r}")
        if self.resize not in ("stretch", "letterbox"):
            raise LineInspectError(f"resize must be 'stretch' or 'letterbox', not {self.resize!r}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))


def probe(data: bytes) -> tuple[str, int, int]:
    """Format and size from the header alone, without decoding the pixels."""
    if not data:
        raise ImageDecodeError("empty file: no image data")
    try:
        with Image.open(io.BytesIO(data)) as im:
            return (im.format or "unknown"), im.width, im.height
    except UnidentifiedImageError:  # its message names a memory address: the same file must get the same words
        raise ImageDecodeError("not a readable image (not a format this product reads)") from None
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(f"not a readable image ({exc.__class__.__name__}: {exc})") from None
    except Image.DecompressionBombError as exc:
        raise PixelLimitError(f"image refused: {exc}") from None


def reduction_factor(fmt: str, width: int, height: int, spec: PreprocessSpec) -> int:
    """How much a JPEG may be shrunk while decoding (1, 2, 4 or 8).

    The reduced image stays at least twice the model input on both sides, so the
    final resize still averages over real pixels. Only JPEG has a DCT-domain
    reduced decode that actually saves time.
    """
    if fmt != "JPEG":
        return 1
    factor = 1
    for f in (2, 4, 8):
        if width // f >= 2 * spec.width and height // f >= 2 * spec.height:
            factor = f
    return factor


def decode(data: bytes, spec: PreprocessSpec) -> np.ndarray:
    """Bytes to an HxWx3 uint8 RGB array (gray replicated), EXIF orientation applied."""
    fmt, width, height = probe(data)
    if width * height > spec.max_pixels:
        raise PixelLimitError(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {spec.max_pixels:,}"
        )
    factor = reduction_factor(fmt, width, height, spec)
    if factor > 1:
        flag = _REDUCED_FLAGS[(spec.color, factor)]
    else:
        flag = cv2.IMREAD_GRAYSCALE if spec.color == "gray" else cv2.IMREAD_COLOR
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, flag)
    if image is None or image.size == 0:
        raise ImageDecodeError(f"{fmt} image could not be decoded (corrupt or unsupported variant)")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize an HxWx3 uint8 image to the model input size by the spec's policy."""
    if spec.resize == "stretch":
        return _resize_to(image, spec.width, spec.height)
    top, left, nh, nw = content_box(image.shape[0], image.shape[1], spec)
    canvas = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
    canvas[top : top + nh, left : left + nw] = _resize_to(image, nw, nh)
    return canvas


def content_box(height: int, width: int, spec: PreprocessSpec) -> tuple[int, int, int, int]:
    """(top, left, height, width) of an image of this size within the model input: all of it when stretched,
    the part between the bars when letterboxed."""
    if spec.resize == "stretch":
        return 0, 0, spec.height, spec.width
    scale = min(spec.width / width, spec.height / height)
    nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
    return (spec.height - nh) // 2, (spec.width - nw) // 2, nh, nw


def _resize_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrinking = width * height < w * h
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def load_image(data: bytes, spec: PreprocessSpec) -> np.ndarray:
    """Bytes to the model-sized HxWx3 uint8 image (what training augments)."""
    return resize(decode(data, spec), spec)


def to_input(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Model-sized HxWx3 uint8 image to normalised 3xHxW float32: (x / 255 - mean) / std per channel,
    computed as one conversion and two in-place passes (x * scale - offset)."""
    mean, std = np.asarray(spec.mean, dtype=np.float64), np.asarray(spec.std, dtype=np.float64)
    x = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    x *= (1.0 / (255.0 * std)).astype(np.float32)[:, None, None]
    x -= (mean / std).astype(np.float32)[:, None, None]
    return x


def preprocess(data: bytes, spec: PreprocessSpec) -> np.ndarray:
    """Bytes to normalised 3xHxW float32 model input: the one path used everywhere."""
    return to_input(load_image(data, spec), spec)
