"""Rendered product labels with known fields: test images for the label reader.

Each label prints a part number, lot, serial (Luhn check digit), manufacturing date and GTIN
(GS1 check digit), optionally in Korean, and is then photographed the way a line camera
sees it: on a part, turned a little (or a quarter turn), shaded, blurred and compressed.
Fonts are the system's (Debian: fonts-dejavu-core, fonts-nanum for Korean).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
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


# Families of labels, each varying one way labels differ from a clean, flat, cropped one (the `photo` family is
# render_label's photographed label: several kinds of damage at once, and a quarter of them turned).
HERSHEY_FONTS = {
    "simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "plain": cv2.FONT_HERSHEY_PLAIN,
    "duplex": cv2.FONT_HERSHEY_DUPLEX,
    "complex": cv2.FONT_HERSHEY_COMPLEX,
    "triplex": cv2.FONT_HERSHEY_TRIPLEX,
    "complex-small": cv2.FONT_HERSHEY_COMPLEX_SMALL,
}
TRUETYPE_LATIN = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
)
TRUETYPE_KOREAN = (
    "NanumGothic.ttf",
    "NanumGothicBold.ttf",
    "NanumBarunGothic.ttf",
    "NanumMyeongjo.ttf",
    "NanumSquareR.ttf",
    "NanumGothicCoding.ttf",
)
LABEL_FAMILIES = (
    "photo",
    "hershey",
    "truetype",
    "margins",
    "borders",
    "light-on-dark",
    "small-text",
    "large-text",
    "tilted",
    "turned",
    "perspective",
    "blur",
    "jpeg",
)
LATIN_ONLY_FAMILIES = ("hershey",)  # Hershey fonts have no Hangul


@dataclass(frozen=True)
class LabelStyle:
    """How the label is printed."""

    font: str | int = "DejaVuSans.ttf"  # a TrueType file name, or a HERSHEY_FONTS value
    cap_px: int = 26  # height of a capital letter, pixels
    margin: float = 1.0  # paper around the print, in capital heights
    border: str = "thin"  # none, thin, thick, double, rounded or tight (a frame close to the print)
    inverted: bool = False  # light print on dark paper


@dataclass(frozen=True)
class Shot:
    """How the printed label reaches the reader: cropped to the label, or on a part and turned or skewed."""

    on_part: bool = False
    angle: float = 0.0  # degrees, counter-clockwise
    quarter_turns: int = 0  # clockwise
    perspective: float = 0.0  # corner displacement, share of the frame
    blur: float = 0.0  # Gaussian sigma, pixels
    jpeg: int | None = None  # quality


def _text_width(line: str, font: str | int, cap_px: int, korean: bool) -> tuple[int, object]:
    if isinstance(font, int):
        scale, thickness = _hershey_scale(font, cap_px)
        return cv2.getTextSize(line, font, scale, thickness)[0][0], (scale, thickness)
    ttf = ImageFont.truetype(str(find_font((font,) + (KOREAN_FONTS if korean else LATIN_FONTS))), _em(cap_px))
    return int(ttf.getbbox(line)[2]), ttf


def _hershey_scale(font: int, cap_px: int) -> tuple[float, int]:
    height = cv2.getTextSize("H", font, 1.0, 1)[0][1]
    return cap_px / height, max(1, round(cap_px / 12))


def _em(cap_px: int) -> int:
    return round(cap_px / 0.73)  # DejaVu's and Nanum's capitals are about 0.73 em


def draw_styled(lines: list[str], style: LabelStyle, korean: bool, rng: np.random.Generator) -> np.ndarray:
    """The flat label (gray) in `style`: the print, its margin and its frame."""
    cap = style.cap_px
    measured = [_text_width(line, style.font, cap, korean) for line in lines]
    pitch = int(cap * 1.9)
    pad = int(round(style.margin * cap))
    frame = {"none": 0, "thin": max(2, cap // 12), "thick": max(6, cap // 3), "double": max(2, cap // 12)}.get(
        style.border, max(2, cap // 10)
    )
    inset = 0 if style.border == "none" else frame + (frame * 3 if style.border == "double" else 0)
    if style.border == "tight":
        pad = max(2, cap // 4)
    width = max(w for w, _ in measured) + 2 * (pad + inset)
    height = (len(lines) - 1) * pitch + int(cap * 1.35) + 2 * (pad + inset)  # descenders below the last line
    paper, ink_level = int(rng.integers(225, 250)), int(rng.integers(0, 40))
    label = np.full((height, width), paper, np.uint8)
    y0 = pad + inset
    for i, (line, (_, font)) in enumerate(zip(lines, measured, strict=True)):
        baseline = y0 + i * pitch + cap
        if isinstance(style.font, int):
            scale, thickness = font
            cv2.putText(label, line, (pad + inset, baseline), style.font, scale, ink_level, thickness, cv2.LINE_AA)
        else:
            image = Image.fromarray(label)
            ImageDraw.Draw(image).text((pad + inset, baseline), line, font=font, fill=ink_level, anchor="ls")
            label = np.asarray(image).copy()
    _frame(label, style.border, frame, ink_level)
    return 255 - label if style.inverted else label


def _frame(label: np.ndarray, border: str, width: int, level: int) -> None:
    h, w = label.shape
    if border == "none":
        return
    if border == "rounded":
        r = 4 * width
        box = np.zeros_like(label)
        cv2.rectangle(box, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(box, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(box, (cx, cy), r, 255, -1)
        inner = cv2.erode(box, np.ones((2 * width + 1, 2 * width + 1), np.uint8))
        label[(box > 0) & (inner == 0)] = level
        label[box == 0] = 255 - level // 2  # outside the rounded corners: the backing sheet
        return
    cv2.rectangle(label, (0, 0), (w - 1, h - 1), level, width)
    if border == "double":
        cv2.rectangle(label, (2 * width, 2 * width), (w - 1 - 2 * width, h - 1 - 2 * width), level, width)


def family_case(family: str, seed: int, korean: bool) -> tuple[LabelStyle, Shot]:
    """The style and shot of label `seed` in `family`: clean defaults, one thing varied (fixed per seed)."""
    rng = np.random.default_rng([seed, LABEL_FAMILIES.index(family)])
    fonts = TRUETYPE_KOREAN if korean else TRUETYPE_LATIN
    style, shot = LabelStyle(font=fonts[0], cap_px=int(rng.integers(20, 32))), Shot()
    if family == "hershey":
        names = sorted(HERSHEY_FONTS)
        style = replace(style, font=HERSHEY_FONTS[names[seed % len(names)]])
    elif family == "truetype":
        style = replace(style, font=fonts[seed % len(fonts)])
    elif family == "margins":
        style = replace(style, margin=float(rng.choice([0.0, 0.1, 0.3, 1.0, 2.5, 4.0])))
    elif family == "borders":
        style = replace(style, border=("none", "thin", "thick", "double", "rounded", "tight")[seed % 6])
    elif family == "light-on-dark":
        style = replace(style, inverted=True, border=("none", "thin")[seed % 2])
    elif family == "small-text":
        style = replace(style, cap_px=int(rng.integers(9, 14)))
    elif family == "large-text":
        style = replace(style, cap_px=int(rng.integers(60, 110)))
    elif family == "tilted":
        shot = replace(shot, on_part=True, angle=float(rng.uniform(2, 7) * rng.choice([-1, 1])))
    elif family == "turned":
        shot = replace(shot, on_part=True, quarter_turns=(1, 2, 3)[seed % 3])
    elif family == "perspective":
        shot = replace(shot, on_part=True, perspective=float(rng.uniform(0.05, 0.1)))
    elif family == "blur":
        shot = replace(shot, blur=float(rng.uniform(1.0, 2.5)))
    elif family == "jpeg":
        shot = replace(shot, jpeg=int(rng.integers(10, 35)))
    return style, shot


def photograph(flat: np.ndarray, shot: Shot, rng: np.random.Generator) -> np.ndarray:
    """The flat label as the reader gets it (BGR): on a part when the shot says so, then blurred and compressed."""
    image = flat.astype(np.float32)
    if shot.on_part:
        lh, lw = flat.shape
        side = int(np.hypot(lh, lw) * 1.15)
        base = np.array([rng.uniform(60, 150), rng.uniform(70, 150), rng.uniform(80, 170)], np.float32)
        scene = np.ones((side, side, 3), np.float32) * base
        m = cv2.getRotationMatrix2D((lw / 2, lh / 2), shot.angle, 1.0)
        m[:, 2] += (side / 2 - lw / 2, side / 2 - lh / 2)
        paper = cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.ones_like(image), m, (side, side), flags=cv2.INTER_LINEAR)
        image = scene * (1 - mask[..., None]) + paper[..., None] * mask[..., None]
        if shot.perspective:
            src = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
            signs = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]])  # corners pulled inwards, by different amounts
            dst = src + signs * rng.uniform(0, shot.perspective, (4, 2)).astype(np.float32) * side
            image = cv2.warpPerspective(
                image, cv2.getPerspectiveTransform(src, dst), (side, side), borderMode=cv2.BORDER_REPLICATE
            )
    else:
        image = np.repeat(image[..., None], 3, axis=2)
    if shot.blur:
        image = cv2.GaussianBlur(image, (0, 0), shot.blur)
    image += rng.normal(0, 2, image.shape).astype(np.float32)
    photo = np.clip(image, 0, 255).astype(np.uint8)
    photo = np.rot90(photo, k=-shot.quarter_turns).copy()
    if shot.jpeg:
        photo = cv2.imdecode(cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, shot.jpeg])[1], cv2.IMREAD_COLOR)
    return photo


def render_family(family: str, seed: int, korean: bool = False) -> RenderedLabel:
    """Label `seed` of `family` (LABEL_FAMILIES), with its expected fields; the same seed gives the same image."""
    if family not in LABEL_FAMILIES:
        raise LineInspectError(f"unknown label family {family!r}; choose from {', '.join(LABEL_FAMILIES)}")
    if korean and family in LATIN_ONLY_FAMILIES:
        raise LineInspectError(f"the {family} family prints Latin only: its fonts have no Hangul")
    if family == "photo":
        return render_label(seed, korean=korean, quarter_turns=(0, 0, 1, 0, 2, 0, 3, 0)[seed % 8])
    rng = np.random.default_rng(seed)
    fields = random_fields(rng)
    lines = label_lines(fields, korean)
    style, shot = family_case(family, seed, korean)
    return RenderedLabel(photograph(draw_styled(lines, style, korean, rng), shot, rng), fields, lines)
