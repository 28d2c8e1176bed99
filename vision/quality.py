"""Image quality a camera's drift shows in: brightness, contrast and sharpness of the model-sized image.

Measured on the image as the model sees it (after decode and resize), so the figures of one camera are
comparable whatever the upload's resolution or format; letterbox bars are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ImageQuality:
    """Each measure moves with one cause: a darker exposure changes brightness only, blur sharpness."""

    brightness: float  # mean gray level, 0..255
    contrast: float  # standard deviation of the gray levels over their mean (unchanged by exposure)
    sharpness: float  # variance of the Laplacian over the gray variance: falls when out of focus, whatever the exposure


def measure_quality(image: np.ndarray, content: tuple[int, int, int, int] | None = None) -> ImageQuality:
    """Quality of an HxWx3 uint8 RGB image, within `content` = (top, left, height, width) when given."""
    if content is not None:
        top, left, height, width = content
        image = image[top : top + height, left : left + width]
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    mean, sd = (float(v[0, 0]) for v in cv2.meanStdDev(gray))
    laplacian_sd = float(cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_16S))[1][0, 0])
    return ImageQuality(mean, sd / max(mean, 1.0), (laplacian_sd / max(sd, 1.0)) ** 2)
