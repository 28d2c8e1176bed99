"""Rendered analog gauges with a known needle position: test images for the dial reader.

A face with a tick arc and numbers over the calibrated sweep, a needle (dark, or red) with
its tail and hub, photographed with a little perspective, shading, blur and noise.
Angles are degrees clockwise from 12 o'clock, as everywhere in vision/ocr.

Families vary what real dials vary (`FAMILIES`): `plain` as above; `small`, the same shrunk
to 90-210 pixels across, as a wide camera sees a panel meter; `thin-needle`, a hairline needle
in red, blue, orange, green or black; `second-pointer`, a second hand beside the needle (the
needle is red and the hand dark, or the other way round: the gauge config names the needle);
`meter-subdial`, the small dials of a water or gas meter: a light face, a red diamond pointer,
the picture cropped close around the dial and 90-210 pixels across. A full-circle scale is a
matter of the calibration (a 360-degree sweep), drawn by any family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vision.ocr.config import DialCalibration


@dataclass(frozen=True)
class RenderedDial:
    image: np.ndarray  # BGR
    value: float
    angle: float
    center: tuple[float, float]
    radius: float
    needle: str  # red, dark, light or colour (a hairline in another colour)


def angle_of(calibration: DialCalibration, value: float) -> float:
    """Inverse of the calibration: the needle angle that shows `value`."""
    pts = calibration.points
    offsets = calibration.offsets()
    for (a, pa), (b, pb) in zip(zip(offsets, pts, strict=True), zip(offsets[1:], pts[1:], strict=True), strict=False):
        lo, hi = sorted((pa.value, pb.value))
        if lo <= value <= hi:
            t = (value - pa.value) / (pb.value - pa.value)
            return _wrap(pts[0].angle + a + t * (b - a))
    raise ValueError(f"{value} is outside the calibrated scale")


def _value_at(calibration: DialCalibration, offset: float) -> float:
    """The scale's value `offset` degrees clockwise from its start (for the printed numbers)."""
    return float(np.interp(offset, calibration.offsets(), [p.value for p in calibration.points]))


def _wrap(angle: float) -> float:
    """Into (-180, 180]."""
    a = (angle + 180) % 360 - 180
    return 180.0 if a == -180 else a


def _point(cx: float, cy: float, angle: float, r: float) -> tuple[float, float]:
    t = math.radians(angle)
    return cx + r * math.sin(t), cy - r * math.cos(t)


FAMILIES = ("plain", "small", "thin-needle", "second-pointer", "meter-subdial")
RED, DARK, LIGHT = (30, 30, 200), (20, 20, 20), (240, 240, 240)
_HAIRLINE_COLOURS = (RED, (170, 80, 20), (20, 120, 240), (40, 140, 40), DARK)  # BGR: red, blue, orange, green, black
SMALL_SIDES = (90, 210)


def render_dial(
    value: float,
    calibration: DialCalibration,
    seed: int,
    size: int = 480,
    difficulty: float = 0.5,
    family: str = "plain",
) -> RenderedDial:
    """A dial showing `value`; `needle` on the result says which colour the needle was drawn in."""
    if family not in FAMILIES:
        raise ValueError(f"unknown dial family {family!r}; expected one of {FAMILIES}")
    rng = np.random.default_rng(seed)
    angle = angle_of(calibration, value)
    dark_face = rng.random() < 0.25 and family != "meter-subdial"
    face = (35, 35, 35) if dark_face else tuple(int(v) for v in rng.integers(225, 250, 3))
    ink = (235, 235, 235) if dark_face else (25, 25, 25)
    background = rng.integers(60, 200, 3).astype(np.float32)
    scale = 4  # draw big, shrink: anti-aliased geometry
    s = size * scale
    img = np.ones((s, s, 3), np.float32) * background
    cx, cy = s / 2 + rng.uniform(-0.05, 0.05) * s, s / 2 + rng.uniform(-0.05, 0.05) * s
    r = s * rng.uniform(0.36, 0.44)
    cv2.circle(img, (int(cx), int(cy)), int(r * 1.08), (60, 60, 60), -1, cv2.LINE_AA)
    cv2.circle(img, (int(cx), int(cy)), int(r), face, -1, cv2.LINE_AA)
    start, sweep = calibration.points[0].angle, calibration.sweep
    majors = int(rng.choice([4, 5, 6, 8, 10]))
    majors = 10 if family == "meter-subdial" else majors  # numbered 0 to 9 round the circle
    minors = int(rng.choice([2, 4, 5]))
    steps = majors * minors
    full_circle = sweep >= 360  # the last mark would fall on the first
    for k in range(steps if full_circle else steps + 1):
        a = start + sweep * k / steps
        major = k % minors == 0
        p0 = _point(cx, cy, a, r * (0.82 if major else 0.88))
        p1 = _point(cx, cy, a, r * 0.95)
        cv2.line(img, tuple(map(int, p0)), tuple(map(int, p1)), ink, int(r * (0.02 if major else 0.01)), cv2.LINE_AA)
        if major:
            text = f"{round(_value_at(calibration, sweep * k / steps), 2):g}"
            tx, ty = _point(cx, cy, a, r * 0.68)
            fs = r / 220
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, max(1, int(r / 120)))
            cv2.putText(
                img,
                text,
                (int(tx - tw / 2), int(ty + th / 2)),
                cv2.FONT_HERSHEY_SIMPLEX,
                fs,
                ink,
                max(1, int(r / 120)),
                cv2.LINE_AA,
            )
    plain_needle = DARK if not dark_face else LIGHT
    widths = (0.02, 0.045)
    if family == "thin-needle":
        needle = _HAIRLINE_COLOURS[int(rng.integers(len(_HAIRLINE_COLOURS)))]
        needle = LIGHT if needle == DARK and dark_face else needle
        widths = (0.008, 0.016)
    elif family == "second-pointer":
        needle, hand = (RED, plain_needle) if rng.random() < 0.5 else (plain_needle, RED)
        away = rng.uniform(20, 340)
        _draw_needle(img, cx, cy, r, angle + away, hand, rng, (0.01, 0.02), hub=False)
    elif family == "meter-subdial":
        needle = RED
        widths = (0.1, 0.16)
    else:
        needle = RED if rng.random() < 0.4 else plain_needle
    _draw_needle(img, cx, cy, r, angle, needle, rng, widths)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    src = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    dst = src + rng.uniform(-0.03, 0.03, (4, 2)).astype(np.float32) * difficulty * size
    warp = cv2.getPerspectiveTransform(src, dst)
    img = cv2.warpPerspective(img, warp, (size, size), borderMode=cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img *= (1 - 0.3 * difficulty * (yy / size) * rng.uniform(0.3, 1))[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 0.5 + difficulty * rng.uniform(0, 1.2))
    img += rng.normal(0, 2 + 6 * difficulty, img.shape).astype(np.float32)
    centre = cv2.perspectiveTransform(np.float32([[[cx / scale, cy / scale]]]), warp)[0, 0]
    radius = r / scale
    image = np.clip(img, 0, 255).astype(np.uint8)
    if family == "meter-subdial":  # cropped close: the frame's edge cuts the bezel, the dial a little off centre
        half = radius * rng.uniform(0.95, 1.15)
        x0, y0 = (centre + rng.uniform(-0.08, 0.08, 2) * radius - half).astype(int)
        x0, y0 = max(0, x0), max(0, y0)
        crop = int(2 * half)
        image, centre = image[y0 : y0 + crop, x0 : x0 + crop], centre - (x0, y0)
        size = min(image.shape[:2])
        image = image[:size, :size]
    if family in ("small", "meter-subdial"):
        side = int(rng.integers(SMALL_SIDES[0], SMALL_SIDES[1] + 1))
        small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        small = cv2.GaussianBlur(small, (0, 0), rng.uniform(0.3, 0.8))  # a low-resolution camera's own blur
        image = np.clip(small + rng.normal(0, 3, small.shape), 0, 255).astype(np.uint8)
        centre, radius = centre * side / size, radius * side / size
    kind = "red" if needle == RED else "dark" if needle == DARK else "light" if needle == LIGHT else "colour"
    return RenderedDial(image, value, angle, (float(centre[0]), float(centre[1])), radius, kind)


def _draw_needle(
    img: np.ndarray,
    cx: float,
    cy: float,
    r: float,
    angle: float,
    colour: tuple[int, int, int],
    rng: np.random.Generator,
    widths: tuple[float, float],
    hub: bool = True,
) -> None:
    """A tapered pointer from its tail through the centre to its tip, and the hub over it."""
    tip = _point(cx, cy, angle, r * rng.uniform(0.75, 0.9))
    tail = _point(cx, cy, angle + 180, r * rng.uniform(0.1, 0.25))
    width = r * rng.uniform(*widths)
    side = _point(0, 0, angle + 90, width)
    poly = np.array(
        [
            (tail[0] + side[0], tail[1] + side[1]),
            (tip[0] + side[0] * 0.3, tip[1] + side[1] * 0.3),
            (tip[0] - side[0] * 0.3, tip[1] - side[1] * 0.3),
            (tail[0] - side[0], tail[1] - side[1]),
        ],
        np.int32,
    )
    cv2.fillPoly(img, [poly], colour, cv2.LINE_AA)
    if hub:
        cv2.circle(img, (int(cx), int(cy)), int(r * rng.uniform(0.05, 0.1)), colour, -1, cv2.LINE_AA)
