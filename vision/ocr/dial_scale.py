"""Where a dial's scale starts and ends, found from its tick marks.

For calibrations that give the range of values but not the angles. Ticks are marks narrow
in angle and long along the radius, in a ring near the rim; unwrapped around the face's
centre they cover the scale's arc, and the widest stretch without marks is the gap between
the scale's end and its start. Numbers inside the arc only help to cover it, the bezel and
the face's shading are wide and drop out. Only a gap that looks like a dial's (under the
hub, leaving a sweep of 180 to 320 degrees) is believed: otherwise the caller keeps its
own angles.
"""

from __future__ import annotations

import cv2
import numpy as np

ANGLES = 720  # half a degree per row
RADII = 96
INNER = 0.45  # ticks and numbers lie outside this share of the face's radius
MARK_WIDTH = 9  # rows (4.5 degrees): wider features are not marks
MARK_LENGTH = 8  # columns (about 8% of the radius) a mark must run along the radius
MARK_CONTRAST = 0.4  # a mark stands out at least this share of the strongest marks (and 25 grey levels)
RING = 6  # columns either side of the ring with the most marks
NEEDLE_WIDTH = 4.0  # degrees either side of the needle left out: it crosses the ring
AT_END = 30.0  # degrees inside the gap within which a needle is taken to rest on the scale's end
SWEEPS = (170.0, 320.0)  # believable sweeps
GAP_TILT = 25.0  # degrees the gap's middle may lie from 6 o'clock (a tilted photo)


def scale_ends(
    gray: np.ndarray, centre: tuple[float, float], radius: float, needle: float | None
) -> tuple[float, float] | None:
    """(start, end) in degrees clockwise from 12 o'clock, or None when no believable gap shows."""
    polar = cv2.warpPolar(gray, (RADII, ANGLES), centre, radius, cv2.WARP_POLAR_LINEAR)
    polar = np.roll(polar, ANGLES // 4, axis=0)[:, int(INNER * RADII) :]  # row 0: 12 o'clock
    pad = MARK_WIDTH * 2
    polar = np.vstack([polar[-pad:], polar, polar[:pad]])  # marks across 12 o'clock stay whole
    best: tuple[float, float, float] | None = None
    for op in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT):  # dark marks on a light face, light on a dark one
        marks = cv2.morphologyEx(polar, op, cv2.getStructuringElement(cv2.MORPH_RECT, (1, MARK_WIDTH)))
        marks = cv2.erode(marks, cv2.getStructuringElement(cv2.MORPH_RECT, (MARK_LENGTH, 1)))[pad:-pad]
        if needle is not None:  # it crosses the ring: neither a mark nor the measure of one
            k = round(needle % 360 * ANGLES / 360)
            half = round(NEEDLE_WIDTH * ANGLES / 360)
            marks[np.arange(k - half, k + half + 1) % ANGLES] = 0
        hit = marks > max(25.0, float(np.percentile(marks, 99)) * MARK_CONTRAST)
        found = _gap(hit, needle)
        if found and (best is None or found[0] > best[0]):
            best = found
    return (best[1], best[2]) if best else None


def _gap(hit: np.ndarray, needle: float | None) -> tuple[float, float, float] | None:
    """(clarity, start, end) of the widest markless gap: clarity is how much it beats the next."""
    onsets = (hit & ~np.roll(hit, 1, axis=0)).sum(0)
    ring = int(np.argmax(np.convolve(onsets, np.ones(7), "same")))  # the radius with the most separate marks
    covered = hit[:, max(0, ring - RING) : ring + RING + 1].any(1)
    rows = np.flatnonzero(covered)
    if len(rows) < 10:
        return None
    gaps = np.diff(np.concatenate([rows, [rows[0] + ANGLES]]))
    j = int(np.argmax(gaps))
    end, start = rows[j] * 360 / ANGLES, rows[(j + 1) % len(rows)] * 360 / ANGLES
    if needle is not None:  # a needle at rest (or pegged) hides the end tick it lies on
        if (start - needle) % 360 <= AT_END:
            start = needle % 360
        elif (needle - end) % 360 <= AT_END:
            end = needle % 360
    sweep = (end - start) % 360
    middle = (end + (360 - sweep) / 2) % 360
    if not SWEEPS[0] <= sweep <= SWEEPS[1] or abs(middle - 180) > GAP_TILT:
        return None
    clarity = (gaps[j] - np.sort(gaps)[-2]) / ANGLES
    return float(clarity), _wrap(start), _wrap(end)


def _wrap(angle: float) -> float:
    a = (angle + 180) % 360 - 180
    return 180.0 if a == -180 else float(a)
