"""Make a photographed label look like a scanned page, which is what Tesseract is built for.

A label on a line is photographed, not scanned: it sits somewhere in the frame on a parcel
or a part, tilted, sometimes turned on its side, lit unevenly, and its smallest print may be
only a dozen pixels high. Each step below fixes one of those, and every step's geometry is
kept as one 3x3 matrix so word boxes can be mapped back to the photo's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_WIDTH = 640
TARGET_TEXT_HEIGHT = 30  # pixels: Tesseract reads best with capitals about this tall (a template can ask more)
MAX_SIDE = 4000  # upscaling stops here, however small the print


@dataclass
class PreparedLabel:
    image: np.ndarray  # binarised, upright, text scaled for Tesseract (uint8, text black on white)
    to_prepared: np.ndarray  # 3x3: photo pixels -> prepared pixels
    found_label: bool
    skew: float  # degrees corrected
    scale: float
    text_height: float  # median glyph height seen in the photo's label, pixels


def find_label(gray: np.ndarray) -> np.ndarray | None:
    """Corners of the largest bright paper-like quadrilateral, or None when there is none.

    Labels are paper: brighter than the parcel, box or part they sit on. Text closes into the
    paper under a morphological close; the biggest bright region that fills its bounding
    quadrilateral is taken. A label that fills the frame needs no crop (None).
    """
    h, w = gray.shape
    scale = WORK_WIDTH / max(h, w)
    small = cv2.resize(gray, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15))
    bright = cv2.morphologyEx(cv2.morphologyEx(bright, cv2.MORPH_CLOSE, k), cv2.MORPH_OPEN, k)
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    best = max(contours, key=cv2.contourArea, default=None)
    if best is None:
        return None
    area = cv2.contourArea(best)
    if not 0.08 * bright.size <= area <= 0.9 * bright.size:
        return None
    hull = cv2.convexHull(best)
    quad = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True).reshape(-1, 2)
    if len(quad) != 4:
        quad = cv2.boxPoints(cv2.minAreaRect(hull))
    if area / max(cv2.contourArea(quad.astype(np.float32)), 1) < 0.8:
        return None
    return quad.astype(np.float32) / scale


def _order(points: np.ndarray) -> np.ndarray:
    s, d = points.sum(1), points[:, 1] - points[:, 0]
    return np.array(
        [points[np.argmin(s)], points[np.argmin(d)], points[np.argmax(s)], points[np.argmax(d)]], np.float32
    )


def _crop_to(quad: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    q = _order(quad)
    w = int(max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3])))
    h = int(max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1])))
    dst = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    return cv2.getPerspectiveTransform(q, dst), (w, h)


def ink(gray: np.ndarray, block: int) -> np.ndarray:
    """Local-contrast binarisation (text 255): uneven light and shadows do not move the cut."""
    block = max(15, block | 1)
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY_INV, block, 12)


def _glyphs(binary: np.ndarray) -> int:
    """How many blobs in `binary` are shaped like letters (not specks, lines or whole regions)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    h, w = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
    return int(((h >= 6) & (h <= binary.shape[0] / 6) & (w <= 3 * h) & (w >= 2)).sum())


def light_print(dark_ink: np.ndarray, light_ink: np.ndarray) -> bool:
    """True when the print is lighter than its paper (light on dark), given `ink` of the image and of its negative.

    The ink of the right polarity is letters; of the wrong one, the paper between and around them,
    which joins into few, large blobs. Only a clear majority of letters the other way turns it.
    """
    return _glyphs(light_ink) > 1.5 * max(_glyphs(dark_ink), 5)


def text_height(binary: np.ndarray) -> float:
    """Median height of glyph-sized blobs: how big the print is.

    Blobs taller than a sixth of the frame are taken for logos and frames, not print (an eighth cut off the
    glyphs of a label cropped tight to four lines, and the colons were then taken for the print).
    """
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    h, w = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
    glyphs = (h >= 6) & (h <= binary.shape[0] / 6) & (w <= 3 * h) & (w >= 2)
    return float(np.median(h[glyphs])) if glyphs.sum() >= 5 else 0.0


def text_extent(binary: np.ndarray, height: float) -> tuple[int, int, int, int]:
    """Box around the glyph-sized blobs (stray ones at the edges ignored), with a margin, grown to hold
    every print-sized blob it cuts: it never ends inside a letter."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    x, y, w, h = (stats[1:, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    glyphs = (h >= 0.5 * height) & (h <= 2 * height) & (w <= 3 * h)
    margin = int(3 * height)
    rows, cols = binary.shape
    if glyphs.sum() < 5:
        return 0, 0, cols, rows
    x0 = max(0, int(np.percentile(x[glyphs], 1)) - margin)
    y0 = max(0, int(np.percentile(y[glyphs], 1)) - margin)
    x1 = min(cols, int(np.percentile((x + w)[glyphs], 99)) + margin)
    y1 = min(rows, int(np.percentile((y + h)[glyphs], 99)) + margin)
    cut = (x < x1) & (x + w > x0) & (y < y1) & (y + h > y0) & glyphs  # letters, not frames, logos or specks
    if cut.any():
        x0, y0 = min(x0, int(x[cut].min())), min(y0, int(y[cut].min()))
        x1, y1 = max(x1, int((x + w)[cut].max())), max(y1, int((y + h)[cut].max()))
    return x0, y0, x1, y1


def estimate_skew(binary: np.ndarray, limit: float = 12.0) -> float:
    """Text-line angle in degrees: the rotation that makes rows of text sharpest.

    Searched coarse then fine on a small copy; limited to +-`limit` (quarter turns are the
    orientation step's job).
    """
    h, w = binary.shape
    scale = min(1.0, 800 / max(h, w))
    small = cv2.resize(binary, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)

    def sharpness(angle: float) -> float:
        m = cv2.getRotationMatrix2D((small.shape[1] / 2, small.shape[0] / 2), angle, 1.0)
        rows = cv2.warpAffine(small, m, small.shape[::-1]).sum(1, dtype=np.float64)
        return float(np.square(np.diff(rows)).sum())

    best = max(np.arange(-limit, limit + 0.1, 1.0), key=sharpness)
    return float(max(np.arange(best - 1, best + 1.01, 0.2), key=sharpness))


def lines_run_vertically(binary: np.ndarray) -> bool:
    """True when the text lines run top to bottom (the label is on its side).

    Letters of a word sit closer to each other than to the next line, so each glyph's
    nearest neighbour lies along the line: mostly sideways for upright text, mostly above
    or below for text on its side.
    """
    n, _, stats, centres = cv2.connectedComponentsWithStats(binary, connectivity=8)
    h, w = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
    size = np.maximum(h, w)
    glyphs = (size >= 6) & (size <= max(binary.shape) / 10) & (np.minimum(h, w) >= 2)
    pts = centres[1:][glyphs]
    if len(pts) < 8:
        return False
    if len(pts) > 1500:
        pts = pts[np.random.default_rng(0).choice(len(pts), 1500, replace=False)]
    d = pts[:, None, :] - pts[None, :, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    np.fill_diagonal(dist, np.inf)
    nearest = d[np.arange(len(pts)), dist.argmin(1)]
    vertical = np.abs(nearest[:, 1]) > np.abs(nearest[:, 0])
    return bool(vertical.mean() > 0.6)


def rotation_matrix(angle: float, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """3x3 rotation by `angle` degrees (counter-clockwise, OpenCV's sense) about the centre,
    with the canvas grown so nothing is cut off."""
    w, h = size
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return np.vstack([m, [0, 0, 1]]), (nw, nh)


def prepare(
    gray: np.ndarray, quarter_turns: int = 0, crop: bool = True, target_height: int = TARGET_TEXT_HEIGHT
) -> PreparedLabel:
    """Photo (gray) to a binarised, upright page with text at Tesseract's preferred size.

    `quarter_turns` rotates by that many 90-degree turns clockwise first (from the
    orientation step); `crop=False` keeps the whole frame (when the label finder is wrong);
    `target_height` is the capital height the print is scaled to.
    """
    h, w = gray.shape
    transform = np.eye(3)
    size = (w, h)
    quad = find_label(gray) if crop else None
    if quad is not None:
        m, size = _crop_to(quad)
        transform = m @ transform
    if quarter_turns % 4:
        m, size = rotation_matrix(-90.0 * (quarter_turns % 4), size)
        transform = m @ transform
    work = cv2.warpPerspective(gray, transform, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    block = max(work.shape) // 40
    binary, negative = ink(work, block), ink(255 - work, block)
    if light_print(binary, negative):  # the steps below expect dark print on light paper
        gray, work, binary = 255 - gray, 255 - work, negative
    cut = print_cut(work, target_height)
    height = text_height(binary)
    if height:  # keep only where the print is: Tesseract's time grows with the area it searches
        x0, y0, x1, y1 = text_extent(binary, height)
        transform = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ transform
        size = (x1 - x0, y1 - y0)
        binary = binary[y0:y1, x0:x1]
    skew = estimate_skew(binary)
    if abs(skew) >= 0.4:
        m, size = rotation_matrix(skew, size)
        transform = m @ transform
    scale = target_height / height if height else 1.0
    scale = float(np.clip(scale, 0.5, 4.0))
    scale = min(scale, MAX_SIDE / max(size))
    transform = np.diag([scale, scale, 1.0]) @ transform
    size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    work = cv2.warpPerspective(gray, transform, size, flags=interp, borderMode=cv2.BORDER_REPLICATE)
    return PreparedLabel(binarise(work, cut, target_height), transform, quad is not None, skew, scale, height)


def whole(gray: np.ndarray, quarter_turns: int = 0) -> PreparedLabel:
    """The photo as it is, only turned upright: what Tesseract reads when nothing is prepared."""
    h, w = gray.shape
    transform, size = rotation_matrix(-90.0 * (quarter_turns % 4), (w, h))  # the identity for no turn
    image = cv2.warpPerspective(gray, transform, size, flags=cv2.INTER_NEAREST)
    return PreparedLabel(image, transform, False, 0.0, 1.0, 0.0)


def flatten(gray: np.ndarray, text_height: int = TARGET_TEXT_HEIGHT) -> np.ndarray:
    """Divide out the paper's shading: the background estimate is the page with the print
    removed (a max filter wider than a stroke, done on a quarter-size copy for speed)."""
    h, w = gray.shape
    small = cv2.resize(gray, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    k = max(3, text_height // 2) | 1
    paper = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    paper = cv2.GaussianBlur(paper, (0, 0), k / 2)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return np.clip(gray.astype(np.float32) / np.maximum(paper, 1) * 255, 0, 255).astype(np.uint8)


def print_cut(gray: np.ndarray, text_height: int = TARGET_TEXT_HEIGHT) -> float:
    """The grey level between print and paper once shading is divided out (Otsu, whole frame)."""
    cut, _ = cv2.threshold(flatten(gray, text_height), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return cut


def binarise(gray: np.ndarray, cut: float, text_height: int = TARGET_TEXT_HEIGHT) -> np.ndarray:
    """Black print on white, without the speckle that texture and sensor noise leave.

    After flattening, one global cut (`print_cut` of the whole frame, so cropping to the
    print does not move it) separates print from paper everywhere; blobs smaller than the
    dot of an i are removed (Tesseract slows to a crawl on speckle).
    """
    flat = flatten(gray, text_height)
    _, binary = cv2.threshold(flat, cut, 255, cv2.THRESH_BINARY_INV)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < max(4, (text_height // 10) ** 2)
    small[0] = False
    binary[small[labels]] = 0
    return 255 - binary
