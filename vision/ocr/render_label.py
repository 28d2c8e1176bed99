"""Rendered product labels with known fields: test images for the label reader.

Each label prints a part number, lot, serial (Luhn check digit), manufacturing date and GTIN
(GS1 check digit), optionally in Korean, and is then photographed the way a line camera
sees it: on a part, turned a little (or a quarter turn), shaded, blurred and compressed.
Fonts are the system's (Debian: fonts-dejavu-core, fonts-nanum for Korean).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from annotation.errors import LineInspectError

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
LATIN_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf")
KOREAN_FONTS = ("NanumGothic.ttf", "NanumGothicBold.ttf", "NotoSansCJK-Regular.ttc")


@dataclass(frozen=True)
class RenderedLabel:
    image: np.ndarray  # BGR photo
    fields: dict[str, str]  # what a correct reading returns, field name -> validated value
    lines: list[str]  # the text printed, top to bottom


@lru_cache(maxsize=8)
def find_font(names: tuple[str, ...]) -> Path:
    for folder in FONT_DIRS:
        for name in names:
            hits = sorted(folder.rglob(name)) if folder.is_dir() else []
            if hits:
                return hits[0]
    package = "fonts-nanum" if names == KOREAN_FONTS else "fonts-dejavu-core"
    raise LineInspectError(f"no font among {', '.join(names)}; install it: apt-get install {package}")


def _check_digit_luhn(body: str) -> str:
    for d in "0123456789":
        total = 0
        for i, ch in enumerate(reversed(body + d)):
            v = int(ch) * (2 if i % 2 else 1)
            total += v - 9 if v > 9 else v
        if total % 10 == 0:
            return d
    raise AssertionError("unreachable")


def _check_digit_gs1(body: str) -> str:
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def random_fields(rng: np.random.Generator) -> dict[str, str]:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    serial_body = "".join(str(d) for d in rng.integers(0, 10, 9))
    gtin_body = "880" + "".join(str(d) for d in rng.integers(0, 10, 10))
    day = dt.date(2022, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1000)))
    return {
        "part_number": f"{letters[rng.integers(len(letters))]}{letters[rng.integers(len(letters))]}-"
        f"{rng.integers(1000, 9999)}-{letters[rng.integers(len(letters))]}",
        "lot": f"L{day:%y%m%d}{letters[rng.integers(len(letters))]}{rng.integers(0, 9)}",
        "serial": serial_body + _check_digit_luhn(serial_body),
        "date": day.isoformat(),
        "gtin": gtin_body + _check_digit_gs1(gtin_body),
    }


def label_lines(fields: dict[str, str], korean: bool) -> list[str]:
    if korean:
        return [
            "한빛 정밀 주식회사",
            f"품번: {fields['part_number']}",
            f"로트: {fields['lot']}",
            f"제조번호: {fields['serial']}",
            f"제조일자: {fields['date']}",
            f"GTIN: {fields['gtin']}",
        ]
    return [
        "ACME PRECISION PARTS",
        f"P/N: {fields['part_number']}",
        f"LOT: {fields['lot']}",
        f"S/N: {fields['serial']}",
        f"MFG DATE: {fields['date']}",
        f"GTIN: {fields['gtin']}",
    ]


def draw_label(lines: list[str], korean: bool, rng: np.random.Generator, font_px: int = 34) -> np.ndarray:
    """The label itself, flat: black print on off-white paper, a border and a barcode."""
    regular = ImageFont.truetype(str(find_font(KOREAN_FONTS if korean else LATIN_FONTS[:1])), font_px)
    bold = ImageFont.truetype(str(find_font(KOREAN_FONTS[1:2] + KOREAN_FONTS if korean else LATIN_FONTS[1:2])), font_px)
    pad, gap = font_px, int(font_px * 0.55)
    widths = [(bold if i == 0 else regular).getbbox(t)[2] for i, t in enumerate(lines)]
    width = max(widths) + 2 * pad
    height = pad * 2 + len(lines) * (font_px + gap) + font_px * 2
    paper = int(rng.integers(225, 250))
    label = Image.new("L", (width, height), paper)
    draw = ImageDraw.Draw(label)
    draw.rectangle([4, 4, width - 5, height - 5], outline=30, width=3)
    y = pad
    for i, line in enumerate(lines):
        draw.text((pad, y), line, font=bold if i == 0 else regular, fill=int(rng.integers(0, 40)))
        y += font_px + gap
    x = pad
    while x < width - pad:  # a barcode band under the text
        bar = int(rng.integers(2, 7))
        draw.rectangle([x, y + gap, x + bar, y + gap + font_px * 1.3], fill=20)
        x += bar + int(rng.integers(2, 8))
    return np.asarray(label)


def render_label(
    seed: int,
    korean: bool = False,
    quarter_turns: int = 0,
    difficulty: float = 0.5,
    printed: dict[str, str] | None = None,
) -> RenderedLabel:
    """A photographed label (BGR) with its expected fields. `difficulty` 0..1 scales the damage;
    `printed` overrides fields (to print an invalid one, say)."""
    rng = np.random.default_rng(seed)
    fields = {**random_fields(rng), **(printed or {})}
    lines = label_lines(fields, korean)
    flat = draw_label(lines, korean, rng, font_px=int(rng.integers(26, 40)))
    lh, lw = flat.shape
    scene_w, scene_h = int(lw * rng.uniform(1.3, 1.7)), int(lh * rng.uniform(1.4, 1.9))
    base = np.array([rng.uniform(60, 150), rng.uniform(70, 150), rng.uniform(80, 170)], np.float32)
    scene = np.ones((scene_h, scene_w, 3), np.float32) * base
    scene += cv2.GaussianBlur(rng.normal(0, 25, (scene_h, scene_w, 1)).astype(np.float32), (0, 0), 6)[..., None]
    angle = float(rng.uniform(-8, 8) * difficulty)
    cx, cy = scene_w / 2 + rng.uniform(-0.1, 0.1) * scene_w, scene_h / 2 + rng.uniform(-0.1, 0.1) * scene_h
    m = cv2.getRotationMatrix2D((lw / 2, lh / 2), angle, 1.0)
    m[:, 2] += (cx - lw / 2, cy - lh / 2)
    paper = cv2.warpAffine(flat.astype(np.float32), m, (scene_w, scene_h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones_like(flat, np.float32), m, (scene_w, scene_h), flags=cv2.INTER_LINEAR)
    scene = scene * (1 - mask[..., None]) + paper[..., None] * mask[..., None]
    src = np.float32([[0, 0], [scene_w, 0], [scene_w, scene_h], [0, scene_h]])
    dst = src + rng.uniform(-0.04, 0.04, (4, 2)).astype(np.float32) * difficulty * np.float32([scene_w, scene_h])
    scene = cv2.warpPerspective(
        scene, cv2.getPerspectiveTransform(src, dst), (scene_w, scene_h), borderMode=cv2.BORDER_REPLICATE
    )
    yy, xx = np.mgrid[0:scene_h, 0:scene_w].astype(np.float32)
    shade = 1 - 0.35 * difficulty * (xx / scene_w) * rng.uniform(0.5, 1)
    scene = cv2.GaussianBlur(scene * shade[..., None], (0, 0), 0.5 + difficulty * rng.uniform(0, 1))
    scene += rng.normal(0, 2 + 5 * difficulty, scene.shape).astype(np.float32)
    photo = np.clip(scene, 0, 255).astype(np.uint8)
    photo = np.rot90(photo, k=-quarter_turns).copy()  # clockwise turns, as a camera on its side
    return RenderedLabel(photo, fields, lines)
