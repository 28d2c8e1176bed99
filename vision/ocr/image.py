"""Image bytes to pixels for the OCR readers.

The defect model's `decode` shrinks images towards the model's input size; OCR needs the
opposite (small print survives only at full resolution), so it keeps the pixels and only
reduces photos far larger than any reader needs. The same header probe and pixel limit
guard both paths.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.preprocess import DEFAULT_MAX_PIXELS, ImageDecodeError, probe

_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}


def decode_bgr(data: bytes, max_side: int | None = None) -> np.ndarray:
    """Bytes to an HxWx3 uint8 BGR array, EXIF orientation applied.

    `max_side`: JPEGs whose longer side is at least twice this are decoded at 1/2 or 1/4
    in the DCT domain (4K phone photos of labels decode 3x faster and read the same).
    Raises ImageDecodeError for anything that is not a readable image.
    """
    fmt, width, height = probe(data)
    if width * height > DEFAULT_MAX_PIXELS:
        raise ImageDecodeError(f"image is {width}x{height} pixels, over the limit of {DEFAULT_MAX_PIXELS:,}")
    flag = cv2.IMREAD_COLOR
    if fmt == "JPEG" and max_side:
        for factor in (4, 2):
            if max(width, height) // factor >= max_side:
                flag = _REDUCED[factor]
                break
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if image is None or image.size == 0:
        raise ImageDecodeError(f"{fmt} image could not be decoded (corrupt or unsupported variant)")
    return image


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def encode_png(image: np.ndarray) -> bytes:
    """Pixels to PNG bytes: how rendered test images enter the readers, like a camera's upload."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
