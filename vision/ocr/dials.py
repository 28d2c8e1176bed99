"""Read an analog dial: find the face, find the needle, turn its angle into a value.

The needle is the one mark on a dial that is long and radial: in a polar unwrap around the
face's centre it is a line across most radii at one angle, where numbers and ticks cover
only a narrow band. Needles are dark on light faces, light on black ones, often red; each
kind of contrast is tried and the clearest wins (a gauge config's `needle` names one kind; a second pointer
of another kind, as clear, makes the reading a guess). The angle is then refined by fitting a
line to the needle's own pixels, which does not depend on the centre being exact. When no
angle stands out, the reader says so instead of picking the least bad one. A calibration
that knows the values but not the angles can have its scale's ends found on the dial.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import cv2
import numpy as np

from vision.ocr.config import DialCalibration
from vision.ocr.dial_scale import scale_ends
from vision.ocr.image import decode_bgr
from vision.ocr.results import DialResult
from vision.preprocess import ImageDecodeError

WORK_SIDE = 512
ANGLES = 720  # polar resolution: half a degree
BAND = (0.25, 0.6)  # radii (fraction of the face) that a needle crosses and its tail does not
MIN_CONTRAST = 0.35  # needle's profile peak over the typical angle, 0..1
MIN_UNIQUENESS = 0.15  # how much the needle beats the next best direction
MIN_STRENGTH = 0.2  # a needle's evidence against its kind's strongest features; a stray tint's line scores about 0.1
RED_CHROMA = (40, 90)  # red minus the larger of green and blue: from the first to the second, left out of the dark map
RIVAL_APART = 10.0  # degrees between two kinds' pointers beyond which they are two pointers, not one
SEAM = 3.0  # degrees either side of a full-circle scale's seam within which the reading could be either end
SCALE_MARGIN = 8.0  # degrees beyond either end still read as that end (needle on its stop pin)
SURE = 0.6  # an ok reading's least confidence (set on rendered dials: 99.5% of those above it within 2% of span)


@dataclass(frozen=True)
class Face:
    cx: float
    cy: float
    radius: float
    found: bool  # False: no circle, the frame's middle was assumed
    score: float  # how much of the outline is a strong circular edge, weighted to the frame's middle


@dataclass(frozen=True)
class Needle:
    angle: float  # clockwise from 12 o'clock
    contrast: float
    uniqueness: float
    kind: str  # which contrast showed it: dark, light, red
    rival: float | None = None  # angle of another kind's pointer as sure as an ok reading, when there is one

    @property
    def confidence(self) -> float:
        return min(1.0, self.contrast) * min(1.0, 2 * self.uniqueness)


def find_faces(gray: np.ndarray, limit: int = 6) -> list[Face]:
    """Candidate dial faces, best outline first; the frame's middle is always the last resort.

    Bezels, hubs and round labels are circles too. A face's rim is a large circle whose
    circumference is backed by a strong radial edge nearly all the way round; circles in the
    middle of the frame are preferred. Which candidate is the dial is settled by the needle.
    """
    h, w = gray.shape
    side = min(h, w)
    fallback = Face(w / 2, h / 2, side * 0.45, False, 0.1)
    blur = cv2.medianBlur(gray, 5)
    circles = cv2.HoughCircles(
        blur,
        cv2.HOUGH_GRADIENT,
        dp=1.5,
        minDist=side / 20,
        param1=70,
        param2=30,
        minRadius=int(side * 0.2),
        maxRadius=int(side * 0.6),
    )
    if circles is None:
        return [fallback]
    g = cv2.GaussianBlur(gray, (5, 5), 0).astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    t = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    faces = []
    for x, y, r in circles[0][:40]:
        px = np.clip((x + r * np.cos(t)).astype(int), 0, w - 1)
        py = np.clip((y + r * np.sin(t)).astype(int), 0, h - 1)
        radial = np.abs(gx[py, px] * np.cos(t) + gy[py, px] * np.sin(t))
        off_centre = math.hypot(x - w / 2, y - h / 2) / side
        score = float((radial > 40).mean()) * math.sqrt(r / side) * max(0.0, 1 - off_centre)
        if score >= 0.15:
            faces.append(Face(float(x), float(y), float(r), True, score))
    faces.sort(key=lambda f: -f.score)
    return _distinct_faces(faces, side)[:limit] + [fallback]


def _distinct_faces(faces: list[Face], side: int) -> list[Face]:
    kept: list[Face] = []
    for f in faces:
        moved = (
            math.hypot(f.cx - k.cx, f.cy - k.cy) > 0.03 * side or abs(f.radius - k.radius) > 0.05 * side for k in kept
        )
        if all(moved):
            kept.append(f)
    return kept


def _ink_maps(image: np.ndarray, radius: float, needle: str = "auto") -> dict[str, np.ndarray]:
    """Per contrast kind, where a thin feature stands out from the face (0..1); only `needle`'s
    kind unless it is auto. A red pointer is dark too: the dark map leaves red out, so that a
    dark needle is found beside a red second pointer."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    k = max(5, int(radius * 0.12)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    b, g, r = cv2.split(image.astype(np.int16))
    chroma = np.maximum(r - np.maximum(g, b), 0)
    red = np.clip(chroma * 2, 0, 255).astype(np.uint8)
    maps = {
        "dark": cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel),
        "light": cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, kernel),
        "red": red,
    }
    scaled = {name: m.astype(np.float32) / max(float(np.percentile(m, 99.5)), 20.0) for name, m in maps.items()}
    scaled["dark"] *= 1 - np.clip((chroma.astype(np.float32) - RED_CHROMA[0]) / (RED_CHROMA[1] - RED_CHROMA[0]), 0, 1)
    return scaled if needle == "auto" else {needle: scaled[needle]}


def _profile(ink: np.ndarray, face: Face) -> np.ndarray:
    """Needle evidence per angle (ANGLES values, index 0 = 12 o'clock, clockwise)."""
    n_r = 64
    polar = cv2.warpPolar(ink, (n_r, ANGLES), (face.cx, face.cy), face.radius, cv2.WARP_POLAR_LINEAR)
    # warpPolar's angle 0 points right (3 o'clock) and turns clockwise in image coordinates
    polar = np.roll(polar, ANGLES // 4, axis=0)
    band = polar[:, int(BAND[0] * n_r) : int(BAND[1] * n_r)]
    evidence = np.percentile(np.clip(band, 0, 1), 30, axis=1)  # present along most of the band
    return np.convolve(np.concatenate([evidence[-2:], evidence, evidence[:2]]), np.ones(5) / 5, "valid")


def find_needle(inks: dict[str, np.ndarray], face: Face) -> Needle | None:
    """The clearest radial line over the contrast kinds; `rival` is another kind's line, as sure
    as an ok reading, elsewhere (a red drag pointer beside a black needle): which to read is then a guess."""
    found: list[tuple[Needle, np.ndarray]] = []
    for kind, ink in inks.items():
        profile = _profile(ink, face)
        peak = int(np.argmax(profile))
        top = float(profile[peak])
        if top < MIN_STRENGTH:  # nothing of this kind stands out: a near-empty map's best line is noise
            continue
        away = np.abs((np.arange(ANGLES) - peak + ANGLES // 2) % ANGLES - ANGLES // 2) > ANGLES * 20 // 360
        second = float(profile[away].max()) if away.any() else 0.0
        contrast = (top - float(np.median(profile))) / top
        found.append((Needle(peak * 360 / ANGLES, contrast, 1 - second / top, kind), ink))
    if not found:
        return None
    found.sort(key=lambda f: -f[0].contrast * f[0].uniqueness)
    needle, ink = found[0]
    rival = next((_wrap(n.angle) for n, _ in found[1:] if _rivals(n, needle)), None)
    return replace(needle, angle=_refine(ink, face, needle.angle), rival=rival)


def _rivals(other: Needle, needle: Needle) -> bool:
    """Another pointer (its kind's line already reached MIN_STRENGTH): as sure as an ok reading, and elsewhere."""
    apart = abs((other.angle - needle.angle + 180) % 360 - 180)
    return other.confidence >= SURE and apart > RIVAL_APART


def _clear(needle: Needle) -> bool:
    return needle.contrast >= MIN_CONTRAST and needle.uniqueness >= MIN_UNIQUENESS


def _refine(ink: np.ndarray, face: Face, rough: float) -> float:
    """Fit a line to the needle's pixels near the rough angle; its direction is the angle."""
    ys, xs = np.nonzero(ink > 0.5)
    dx, dy = xs - face.cx, ys - face.cy
    r = np.hypot(dx, dy) / face.radius
    theta = np.degrees(np.arctan2(dx, -dy))
    keep = (np.abs((theta - rough + 180) % 360 - 180) < 6) & (r > 0.15) & (r < 0.65)
    if keep.sum() < 10:
        return _wrap(rough)
    pts = np.stack([xs[keep], ys[keep]], 1).astype(np.float32)
    vx, vy, _, _ = cv2.fitLine(pts, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    fitted = math.degrees(math.atan2(vx, -vy))
    if abs((fitted - rough + 180) % 360 - 180) > 90:  # a line has no direction: point it outward
        fitted += 180
    if abs((fitted - rough + 180) % 360 - 180) > 8:  # the fit wandered off (a number, a tick)
        return _wrap(rough)
    return _wrap(fitted)


def _face_and_needle(image: np.ndarray, needle_kind: str) -> tuple[Face, Needle | None]:
    """The candidate face around which a needle stands out most clearly: around the wrong
    centre a needle is no longer radial and its evidence smears over many angles."""
    best: tuple[float, Face, Needle | None] | None = None
    ink = _ink_maps(image, min(image.shape[:2]) * 0.4, needle_kind)
    for face in find_faces(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)):
        needle = find_needle(ink, face)
        quality = needle.contrast * needle.uniqueness * (0.1 + face.score) ** 2 if needle else 0.0
        if best is None or quality > best[0]:
            best = (quality, face, needle)
    assert best is not None
    return best[1], best[2]


def _wrap(angle: float) -> float:
    a = (angle + 180) % 360 - 180
    return 180.0 if a == -180 else float(a)


def value_at(calibration: DialCalibration, angle: float) -> tuple[float | None, str | None]:
    """The calibrated value at a needle angle, or (None, why) when the needle is off the scale;
    (value, why) when it rests where a full circle's ends meet and could be either."""
    offsets = calibration.offsets()
    sweep = offsets[-1]
    offset = (angle - calibration.points[0].angle) % 360
    if offset > sweep:
        margin = min(SCALE_MARGIN, (360 - sweep) / 2)
        if offset - sweep <= margin:
            offset = sweep
        elif 360 - offset <= margin:
            offset = 0.0
        else:
            first, last = calibration.points[0].angle, calibration.points[-1].angle
            return None, f"needle at {angle:.1f} deg is outside the calibrated scale ({first:g} to {last:g} deg)"
    values = [p.value for p in calibration.points]
    value = float(np.interp(offset, offsets, values))
    if sweep >= 360 and min(offset, 360 - offset) < SEAM:
        return value, f"needle at the seam of a full-circle scale, where {values[-1]:g} meets {values[0]:g}"
    return value, None


def _spread(calibration: DialCalibration, start: float, end: float) -> DialCalibration:
    """The calibration's values over the arc from start to end, spaced in the same proportions."""
    ratio = ((end - start) % 360) / calibration.sweep
    points = [
        {"angle": _wrap(start + offset * ratio), "value": p.value}
        for offset, p in zip(calibration.offsets(), calibration.points, strict=True)
    ]
    return calibration.model_copy(update={"points": DialCalibration(points=points).points})


def read_dial(data: bytes, calibration: DialCalibration) -> DialResult:
    """Image bytes to a DialResult; no dial, no needle or an unreadable image gives a reason, not an error.

    With `calibration.find_scale` its angles are only a guess: the scale's ends are taken from
    the dial's tick marks when they show, and the calibration's values spread between them;
    when they do not, the guess is used and a note says so.
    """
    start = time.perf_counter()
    unit = calibration.unit
    try:
        image = decode_bgr(data, max_side=WORK_SIDE * 2)
    except ImageDecodeError as exc:
        reason = f"unreadable image: {exc}"
        return DialResult(None, None, 0.0, time.perf_counter() - start, unit=unit, reason=reason, status="unread")
    h, w = image.shape[:2]
    scale = WORK_SIDE / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    face, needle = _face_and_needle(small, calibration.needle)
    notes = [] if face.found else ["no dial outline found: assumed the dial fills the frame"]
    centre, radius = (face.cx / scale, face.cy / scale), face.radius / scale
    if needle is None or not _clear(needle):
        why = "no needle found"
        if needle is not None:
            why += f" (clearest line: contrast {needle.contrast:.2f}, beats the next by {needle.uniqueness:.2f})"
        return DialResult(
            None,
            None,
            0.0,
            time.perf_counter() - start,
            centre,
            radius,
            unit=unit,
            reason=why,
            notes=notes,
            status="unread",
        )
    ends = None
    if calibration.find_scale:
        ends = scale_ends(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (face.cx, face.cy), face.radius, needle.angle)
        if ends:
            calibration = _spread(calibration, *ends)
            notes.append(f"scale found from the tick marks: {ends[0]:.1f} to {ends[1]:.1f} deg")
        else:
            first, last = calibration.points[0].angle, calibration.points[-1].angle
            notes.append(
                f"scale ends not found on the dial (no tick ring with a clear gap): assumed {first:g} to {last:g} deg"
            )
    value, scale_doubt = value_at(calibration, needle.angle)
    confidence = round(needle.confidence * (1.0 if face.found else 0.7), 4)
    t = math.radians(needle.angle)
    tip = (centre[0] + 0.8 * radius * math.sin(t), centre[1] - 0.8 * radius * math.cos(t))
    seconds = time.perf_counter() - start
    confidence = confidence if value is not None else 0.0
    angle = round(needle.angle, 2)
    doubt = scale_doubt or _doubt(confidence, face, calibration, needle)
    status = "unread" if value is None else "uncertain" if doubt else "ok"
    return DialResult(value, angle, confidence, seconds, centre, radius, tip, unit, doubt, notes, ends, status)


def _doubt(confidence: float, face: Face, calibration: DialCalibration, needle: Needle) -> str | None:
    """Why a value read is only a guess: a faint needle, a second pointer, no dial outline, or a
    scale not calibrated."""
    if confidence < SURE:
        return f"needle unclear (confidence {confidence:.2f})"
    if needle.rival is not None:
        return (
            f"two pointers: read the {needle.kind} one at {needle.angle:.1f} deg, another at {needle.rival:.1f} deg; "
            "name the one to read with `needle:` in the gauge config"
        )
    if not face.found:
        return "no dial outline found: the frame's middle was taken as the dial's centre"
    if calibration.find_scale:
        return "the scale's ends were taken from the dial, not from a calibration with angles"
    return None
