"""Find a digital display in a photo and straighten it into a strip.

A display is a dark window in a lighter panel: LCD glass is darker than the housing around
it, an LED display is black. Phone photos add shadows, fingers and printed captions, all dark
too, so a candidate must also be rectangular, clearly darker than its own surround, and hold
stroke-like detail (digits), and its sides are finally snapped to the window's edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vision.ocr.sevenseg_model import segment_ink

WORK_WIDTH = 480  # the search runs on a copy this wide: a display is never a small detail
STRIP_HEIGHT = 128
PAD = 0.15  # strip height kept beyond the window's ends: a rim reads as nothing, a cut digit as a wrong one
# a window at least as wide as it is high: a one-digit display's glass is about square (1.2 lost every rendered
# display showing one digit; 0.6, 0.8 and 1.0 read the development seeds 50000-50099 the same, the gas pump too)
MIN_ASPECT = 1.0


ROW_GAP = 0.35  # two bands of ink closer than this share of the smaller one's height are one row of digits
MIN_ROW = 0.15  # of the window's height: a band of ink less tall is a speck, not a row of digits
ROW_SHARE = 0.35  # a band of ink less tall than this share of the tallest is a symbol or a caption, not a reading


@dataclass(frozen=True)
class DisplayCandidate:
    corners: np.ndarray  # 4x2 float32, image pixels, clockwise from top-left
    score: float


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    if len(edges) == 0:
        return 0, 0
    starts, ends = edges[::2], edges[1::2]
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])


def order_corners(points: np.ndarray) -> np.ndarray:
    """Any 4 points to top-left, top-right, bottom-right, bottom-left."""
    pts = np.asarray(points, np.float32)
    s, d = pts.sum(1), pts[:, 1] - pts[:, 0]
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], np.float32)


def find_displays(image: np.ndarray, limit: int = 3) -> list[DisplayCandidate]:
    """Display windows in a BGR photo, best first (at most `limit`, possibly none)."""
    h, w = image.shape[:2]
    scale = WORK_WIDTH / w
    small = cv2.resize(image, (WORK_WIDTH, max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    gray = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    otsu, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = float(np.percentile(gray, 95))
    k = max(3, WORK_WIDTH // 40)
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    found: list[DisplayCandidate] = []
    # the glass-to-panel contrast varies from photo to photo: try several cut levels
    for level in np.linspace(otsu, otsu + 0.75 * max(bright - otsu, 0), 5):
        dark = (gray < level).astype(np.uint8)
        closed = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, square)
        blobs = cv2.morphologyEx(closed, cv2.MORPH_OPEN, square)  # solid dark windows
        outer = cv2.findContours(blobs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
        filled = cv2.drawContours(np.zeros_like(blobs), outer, -1, 1, cv2.FILLED)
        for contour in outer:
            candidate = _judge(contour, dark, filled, gray, k)
            if candidate is not None:
                found.append(DisplayCandidate(candidate[0] / scale, candidate[1]))
        contours, hierarchy = cv2.findContours(closed, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        for contour, (_, _, _, parent) in zip(contours, hierarchy[0] if hierarchy is not None else [], strict=True):
            candidate = _judge_framed(contour, gray) if parent >= 0 else None  # light glass in a dark bezel
            if candidate is not None:
                found.append(DisplayCandidate(candidate[0] / scale, candidate[1]))
    return _distinct(sorted(found, key=lambda c: -c.score), limit)


def _judge(contour: np.ndarray, dark: np.ndarray, filled: np.ndarray, gray: np.ndarray, k: int):
    """A dark blob as a display window (corners, score), or None. `filled`: the blobs with their holes filled, so that
    big bright digits on dark glass (holes in its blob) do not cut the window down to a band above or below them."""
    area = cv2.contourArea(contour)
    if not 0.01 * dark.size <= area <= 0.85 * dark.size:
        return None
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
    if rw < rh:
        rw, rh, angle = rh, rw, angle - 90
    if rw / max(rh, 1) < MIN_ASPECT or area / (rw * rh + 1e-6) < 0.5:
        return None
    # straighten the blob's box and keep the rows and columns that are solidly dark
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    m[0, 2] += rw / 2 - cx
    m[1, 2] += rh / 2 - cy
    size = (max(1, int(rw)), max(1, int(rh)))
    solid = cv2.warpAffine(filled, m, size, flags=cv2.INTER_NEAREST) > 0
    c0, c1 = 0, solid.shape[1]
    r0 = r1 = 0
    for _ in range(2):
        r0, r1 = _longest_run(solid[:, c0:c1].mean(1) >= 0.8)
        if r1 - r0 < 4:
            return None
        c0, c1 = _longest_run(solid[r0:r1].mean(0) >= 0.8)
    if r1 - r0 < 4 or c1 - c0 < MIN_ASPECT * (r1 - r0):
        return None
    upright_dark = cv2.warpAffine(dark, m, size, flags=cv2.INTER_NEAREST)[r0:r1, c0:c1]
    if upright_dark.mean() < 0.7:  # printed text closes into a blob too, but stays half paper
        return None
    corners = cv2.transform(np.float32([[c0, r0], [c1, r0], [c1, r1], [c0, r1]])[None], cv2.invertAffineTransform(m))[0]
    inside = np.zeros_like(gray)
    cv2.fillConvexPoly(inside, corners.astype(np.int32), 255)
    ring = (cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * k, 2 * k))) > 0) & (inside == 0)
    if not ring.any():
        return None
    contrast = (float(np.median(gray[ring])) - float(np.median(gray[inside > 0]))) / 255
    if contrast < 0.08:
        return None
    roi = cv2.warpAffine(gray, m, size)[r0:r1, c0:c1]
    kk = max(5, (r1 - r0) // 3) | 1
    detail = cv2.morphologyEx(roi, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kk, kk)))
    detail = np.maximum(
        detail, cv2.morphologyEx(roi, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kk, kk)))
    )
    strokes = float((detail > 12).mean())
    if strokes < 0.03:  # an empty dark patch: shadow, finger, hole
        return None
    return corners, (r1 - r0) * (c1 - c0) * min(contrast, 0.3) * min(strokes, 0.15)


def _judge_framed(hole: np.ndarray, gray: np.ndarray):
    """Light glass inside a dark bezel: the hole in a dark ring, if it is a rectangle with digits. The hole's convex
    hull is the glass: digits closed into the bezel notch the hole itself."""
    hole = cv2.convexHull(hole)
    area = cv2.contourArea(hole)
    if not 0.01 * gray.size <= area <= 0.85 * gray.size:
        return None
    rect = cv2.minAreaRect(hole)
    rw, rh = sorted(rect[1], reverse=True)
    if not MIN_ASPECT <= rw / max(rh, 1) <= 12 or area / (rw * rh + 1e-6) < 0.85:
        return None
    x, y, w, h = cv2.boundingRect(hole)
    roi = gray[y : y + h, x : x + w]
    kk = max(5, int(rh) // 3) | 1
    strokes = float(
        (cv2.morphologyEx(roi, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kk, kk))) > 12).mean()
    )
    if strokes < 0.03:
        return None
    return cv2.boxPoints(rect), area * 0.3 * min(strokes, 0.15)


def _distinct(candidates: list[DisplayCandidate], limit: int) -> list[DisplayCandidate]:
    """Drop candidates that are mostly the same window as a better one (found at another level).

    A much smaller candidate inside a better one is kept: at a light cut the glass can merge
    with a shaded panel or a shadow into one big dark blob, and only the darker cut that
    found the glass alone gives a strip that reads."""
    kept: list[DisplayCandidate] = []
    for c in candidates:
        centre, area = tuple(map(float, c.corners.mean(0))), cv2.contourArea(c.corners)
        if all(
            cv2.pointPolygonTest(k.corners.reshape(-1, 1, 2), centre, False) < 0
            or area < 0.7 * cv2.contourArea(k.corners)
            for k in kept
        ):
            kept.append(c)
        if len(kept) == limit:
            break
    return kept


def straighten(image: np.ndarray, corners: np.ndarray, given: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The window as an upright strip STRIP_HEIGHT high, top and bottom snapped to the glass.

    Returns the strip and the 3x3 homography from strip to image pixels (to map boxes back).
    The blob's box is only roughly the glass: a caption or a shaded panel may have merged in
    below or above, so the strip is cut with a margin and its top and bottom moved to the
    strongest edges across it (the median over columns ignores edges that do not run the full
    width, such as a caption's letters). The ends are not snapped: the first digit of a
    display is often a lone '1' whose stroke looks just like the glass's edge; a little margin
    instead leaves the reader a rim, which it was trained to ignore. A `given` window (a gauge config's region, or
    the photo itself when it is cropped to the display) is not snapped on a side that lies on the photo's edge:
    there is nothing beyond it to snap to, and the digits' own edges would be taken for the glass's.
    """
    q = order_corners(corners)
    width_px = float(np.linalg.norm(q[1] - q[0]))
    height_px = float(np.linalg.norm(q[3] - q[0]))
    h = STRIP_HEIGHT
    w = max(h, round(h * width_px / max(height_px, 1)))
    my, mx = h // 4, max(h // 4, math.ceil(PAD * h))
    dst = np.float32([[mx, my], [mx + w, my], [mx + w, my + h], [mx, my + h]])
    to_strip = cv2.getPerspectiveTransform(q, dst)
    big = cv2.warpPerspective(
        image, to_strip, (w + 2 * mx, h + 2 * my), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    gray = cv2.GaussianBlur(cv2.cvtColor(big, cv2.COLOR_BGR2GRAY).astype(np.float32), (5, 5), 0)
    dy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)[:, mx : mx + w]
    entering, leaving = -np.median(dy, axis=1), np.median(dy, axis=1)  # into the glass, out of it
    top, bottom = my, my + h
    if not given or q[:2, 1].min() > 0.5:
        top = int(np.argmax(entering[: my + h // 2]))
    if not given or q[2:, 1].max() < image.shape[0] - 0.5:
        bottom = my + h // 2 + int(np.argmax(leaving[my + h // 2 :]))
    left, right = round(mx - PAD * h), round(mx + w + PAD * h)
    strip = big[top:bottom, left:right]
    shift = np.array([[1, 0, left], [0, 1, top], [0, 0, 1]], np.float64)
    return strip, np.linalg.inv(to_strip) @ shift


def text_rows(strip: np.ndarray, dark: bool) -> list[tuple[int, int]]:
    """The bands of a straightened window that hold segments, top to bottom, as (top, bottom) rows of the strip: one
    on most displays, two or more where readings are stacked (a thermo-hygrometer's humidity under its
    temperature). Strokes are kept as the reader keeps them (`segment_ink`),
    less what touches the strip's edge (the glass's rim or bezel); a band less than ROW_SHARE as tall as the
    tallest, or than MIN_ROW of the window, is left out."""
    gray = strip if strip.ndim == 2 else cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY)
    h = gray.shape[0]
    ink = segment_ink(gray, dark)
    level, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    strokes = _inside(ink > max(level, 12))
    if not strokes.any():  # a bright sliver of panel at the edge set the level: the strokes are fainter than it
        level, _ = cv2.threshold(ink[ink <= level].reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        strokes = _inside(ink > max(level, 12))
    profile = strokes.mean(axis=1)
    padded = np.concatenate([[False], profile > max(0.008, 0.03 * profile.max(initial=0.0)), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    bands: list[tuple[int, int]] = []
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        if bands and a - bands[-1][1] < ROW_GAP * min(b - a, bands[-1][1] - bands[-1][0]):
            a = bands.pop()[0]  # the gap between a digit's segments ("0", "7" have no middle bar), not between rows
        bands.append((a, b))
    tallest = max((b - a for a, b in bands), default=0)
    return [(a, b) for a, b in bands if b - a >= max(ROW_SHARE * tallest, MIN_ROW * h)]


def _inside(mask: np.ndarray) -> np.ndarray:
    """The mask's pieces that do not touch its edge (what touches the edge is rim or bezel)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    x, y, w, h = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    inside = (x > 0) & (y > 0) & (x + w < mask.shape[1]) & (y + h < mask.shape[0])
    inside[0] = False  # the background
    return inside[labels]
