"""Rendered seven-segment readouts with known text: training data for the digit reader and
test images for it.

A strip is the display glass alone (what the reader sees after finding and straightening the
display); a photo puts that strip in a panel and photographs it badly (perspective, blur,
glare, noise, JPEG). LCDs show dark segments on grey-green glass with the unlit segments
faintly visible; LEDs show bright segments on black. Everything follows the generator.

Photo families (`FAMILIES`) vary what real panels vary: `plain` as above (a quarter LED);
`negative-lcd`, a backlit LCD with light segments on dark blue, green or black glass;
`coloured-lcd`, coloured segments (blue, red, green) on light grey glass, as on an insulation
tester; `unit`, a unit (V, mA, kPa, M, %, Hz) printed on the glass after the digits;
`two-row`, a second, smaller reading under the first (a thermo-hygrometer's humidity under its
temperature): the photo's text is the top row's, which a gauge config picks with `row: 1`;
`timer`, a timer's or clock's time with colons (M:SS, H:MM:SS, HH:MM), half of them LEDs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

SEGMENTS = {
    "0": "abcdef",
    "1": "bc",
    "2": "abdeg",
    "3": "abcdg",
    "4": "bcfg",
    "5": "acdfg",
    "6": "acdefg",
    "7": "abc",
    "8": "abcdefg",
    "9": "abcdfg",
    "-": "g",
    " ": "",
}
VARIANTS = {"6": "cdefg", "7": "abcf", "9": "abcfg"}  # other common glyphs of the same digits


@dataclass(frozen=True)
class SegmentStyle:
    """Geometry and look of one display; lengths are fractions of the digit height."""

    digit_height: float  # pixels
    aspect: float  # digit width / height
    thickness: float
    gap: float  # between neighbouring segments
    slant: float  # degrees, positive leans right (italic)
    pitch: float  # cell advance / digit width
    ghost: float  # contrast of unlit segments relative to lit ones (LCD), 0 = invisible
    point_size: float  # decimal point side / segment thickness
    point_gap: float  # where the point sits in the gap after its digit, 0 = against the digit
    led: bool
    variant_glyphs: bool


def random_style(rng: np.random.Generator, digit_height: float = 60.0) -> SegmentStyle:
    return SegmentStyle(
        digit_height=digit_height,
        aspect=float(rng.uniform(0.42, 0.62)),
        thickness=float(rng.uniform(0.06, 0.17)),
        gap=float(rng.uniform(0.0, 0.035)),
        slant=float(rng.choice([0.0, rng.uniform(0, 14)], p=[0.35, 0.65])),
        pitch=float(rng.uniform(1.2, 1.6)),
        ghost=float(rng.choice([0.0, rng.uniform(0.03, 0.3)], p=[0.3, 0.7])),
        point_size=float(rng.uniform(0.8, 1.6)),
        point_gap=float(rng.uniform(0.0, 0.5)),
        led=bool(rng.random() < 0.25),
        variant_glyphs=bool(rng.random() < 0.3),
    )


def cells_of(text: str) -> list[tuple[str, bool, bool]]:
    """'-12.50' -> [('-', F, F), ('1', F, F), ('2', True, F), ('5', F, F), ('0', F, F)]: each cell's character, whether
    a decimal point follows it and whether a colon does ('12:34': ('2', F, True))."""
    cells: list[tuple[str, bool, bool]] = []
    for ch in text:
        if ch in ".:":
            mark = 1 if ch == "." else 2
            if not cells or cells[-1][mark]:
                cells.append((" ", ch == ".", ch == ":"))
            else:
                cells[-1] = tuple(True if i == mark else v for i, v in enumerate(cells[-1]))
        elif ch in SEGMENTS:
            cells.append((ch, False, False))
        else:
            raise ValueError(f"a seven-segment display cannot show {ch!r}")
    return cells


def colon_space(style: SegmentStyle) -> float:
    """The extra advance after a cell with a colon: clocks and timers leave room for its two dots (at most half a
    digit's width, so the digits either side stay under 1.5 cells apart)."""
    return min(2.2 * style.thickness * style.point_size, 0.5 * style.aspect) * style.digit_height


def _segment_polygons(style: SegmentStyle) -> dict[str, np.ndarray]:
    h = style.digit_height
    w, t, g = style.aspect * h, style.thickness * h, style.gap * h
    xl, xr, yt, ym, yb = t / 2, w - t / 2, t / 2, h / 2, h - t / 2

    def horizontal(y: float) -> np.ndarray:
        a, b = xl + g, xr - g
        return np.array(
            [
                (a, y),
                (a + t / 2, y - t / 2),
                (b - t / 2, y - t / 2),
                (b, y),
                (b - t / 2, y + t / 2),
                (a + t / 2, y + t / 2),
            ]
        )

    def vertical(x: float, y0: float, y1: float) -> np.ndarray:
        a, b = y0 + g, y1 - g
        return np.array(
            [
                (x, a),
                (x + t / 2, a + t / 2),
                (x + t / 2, b - t / 2),
                (x, b),
                (x - t / 2, b - t / 2),
                (x - t / 2, a + t / 2),
            ]
        )

    polys = {
        "a": horizontal(yt),
        "g": horizontal(ym),
        "d": horizontal(yb),
        "f": vertical(xl, yt, ym),
        "b": vertical(xr, yt, ym),
        "e": vertical(xl, ym, yb),
        "c": vertical(xr, ym, yb),
    }
    shear = math.tan(math.radians(style.slant))
    for p in polys.values():
        p[:, 0] += (h - p[:, 1]) * shear
    return polys


def draw_strip_ink(
    text: str,
    style: SegmentStyle,
    n_cells: int,
    size: tuple[int, int],
    origin: tuple[float, float],
    colon_lit: bool = True,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Lit segments as 1.0, unlit (ghost) segments as `style.ghost`, on a float32 canvas; a colon unlit
    (`colon_lit` False: a clock's blinking colon in its off half) keeps its room and shows as a ghost.

    Text is right-aligned in `n_cells` cells starting at `origin` (x, y of the first cell's
    top-left). Returns the canvas and, per shown character, the horizontal extent of its lit
    segments (char, x_left, x_right), so callers know what a crop of the strip still shows.
    """
    height, width = size
    lit = np.zeros((height, width), np.float32)
    ghost = np.zeros((height, width), np.float32)
    polys = _segment_polygons(style)
    cells = cells_of(text)
    cells = [(" ", False, False)] * max(0, n_cells - len(cells)) + cells
    w = style.aspect * style.digit_height
    advance = w * style.pitch
    t = style.thickness * style.digit_height
    shown: list[tuple[str, float, float]] = []
    scale = 16  # fixed-point sub-pixel drawing
    shear = math.tan(math.radians(style.slant))
    ox, oy = origin
    p = t * style.point_size

    def square(x: float, y: float, target: np.ndarray) -> None:
        box = np.round(np.array([(x, y), (x + p, y), (x + p, y + p), (x, y + p)]) * scale)
        cv2.fillPoly(target, [box.astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)

    for i, (ch, dot, colon) in enumerate(cells):
        x0 = ox + i * advance + colon_space(style) * sum(c[2] for c in cells[:i])
        on = SEGMENTS[ch]
        if style.variant_glyphs and ch in VARIANTS:
            on = VARIANTS[ch]
        for name, poly in polys.items():
            pts = np.round((poly + (x0, oy)) * scale).astype(np.int32)
            cv2.fillPoly(lit if name in on else ghost, [pts], 1.0, lineType=cv2.LINE_AA, shift=4)
        if on:
            xs = np.concatenate([polys[name][:, 0] for name in on]) + x0
            shown.append((ch, float(xs.min()), float(xs.max())))
        dx = x0 + w + max(0.02 * style.digit_height, style.point_gap * (advance - w) - p / 2)
        dy = oy + style.digit_height - p
        square(dx, dy, lit if dot else ghost)
        if dot:
            shown.append((".", dx, dx + p))
        if colon:  # two dots halfway between this cell and the next, leaning with the digits
            cx = x0 + w + (advance - w + colon_space(style)) / 2 - p / 2
            ys = [oy + style.digit_height * f - p / 2 for f in (0.3, 0.7)]
            xs = [cx + (style.digit_height - y - p / 2) * shear for y in ys]
            for x, y in zip(xs, ys, strict=True):
                square(x, y, lit if colon_lit else ghost)
            if colon_lit:
                shown.append((":", min(xs), max(xs) + p))
    return np.maximum(lit, ghost * style.ghost), shown


def random_reading(rng: np.random.Generator) -> str:
    """A plausible readout: 1-4 integer digits, often decimals, sometimes negative."""
    integer = str(int(rng.integers(0, 10 ** int(rng.integers(1, 5)))))
    decimals = int(rng.choice([0, 1, 2, 3], p=[0.3, 0.25, 0.35, 0.1]))
    text = integer + ("." + "".join(str(d) for d in rng.integers(0, 10, decimals)) if decimals else "")
    return ("-" + text) if rng.random() < 0.12 else text


def random_time(rng: np.random.Generator) -> str:
    """A timer's or clock's readout: minutes and seconds (M:SS or MM:SS), hours, minutes and seconds (H:MM:SS) or
    a time of day (HH:MM)."""
    a, b, c = (int(v) for v in rng.integers(0, 60, 3))
    kind = int(rng.choice(3, p=[0.6, 0.2, 0.2]))
    if kind == 0:
        return f"{a}:{b:02d}" if rng.random() < 0.5 else f"{a:02d}:{b:02d}"
    if kind == 1:
        return f"{a % 10}:{b:02d}:{c:02d}"
    return f"{a % 24:02d}:{b:02d}"


def family_reading(rng: np.random.Generator, family: str) -> str:
    """A readout as the family's displays show it: a time for `timer`, else `random_reading`."""
    return random_time(rng) if family == "timer" else random_reading(rng)


FAMILIES = ("plain", "negative-lcd", "coloured-lcd", "unit", "two-row", "timer")
_RECOLOURED_LCDS = ("negative-lcd", "coloured-lcd")  # LCD families with their own glass and segment colours
UNITS = ("V", "mA", "kPa", "M", "%", "Hz")
_NEGATIVE_GLASS = ((70, 25, 10), (20, 45, 15), (15, 15, 15))  # BGR: dark blue, dark green, black
_NEGATIVE_SEGMENTS = ((235, 235, 225), (240, 230, 150), (120, 220, 250))  # white, cyan, amber
_COLOURED_SEGMENTS = ((150, 60, 20), (40, 40, 170), (50, 120, 30))  # blue, red, green


def render_strip(
    text: str,
    rng: np.random.Generator,
    style: SegmentStyle | None = None,
    extra_cells: int | None = None,
    family: str = "plain",
    below: str | None = None,
    colon_lit: bool = True,
) -> tuple[np.ndarray, list[tuple[str, float, float]], SegmentStyle]:
    """A display's glass, BGR uint8, digits filling most of its height; also what each shown
    character spans horizontally (see `draw_strip_ink`). `family` (FAMILIES) picks the glass's
    look and whether a unit follows the digits; `below`, a second, smaller reading under the
    first, right-aligned with it (a thermo-hygrometer's humidity under its temperature)."""
    style = style or random_style(rng)
    cells = cells_of(text)
    n_chars = len(cells)
    extra = int(rng.integers(0, 3)) if extra_cells is None else extra_cells
    n_cells = n_chars + extra
    h = style.digit_height
    w = style.aspect * h
    margin_y = h * float(rng.uniform(0.12, 0.35))
    margin_x = w * float(rng.uniform(0.3, 0.9))
    lean = h * math.tan(math.radians(style.slant))
    height = int(round(h + 2 * margin_y))
    colons = colon_space(style) * sum(c[2] for c in cells)
    width = int(round(2 * margin_x + lean + (n_cells - 1) * w * style.pitch + w + colons))
    ink, shown = draw_strip_ink(text, style, n_cells, (height, width), (margin_x, margin_y), colon_lit)
    if below is not None:
        ink = _with_row_below(ink, below, style, width - margin_x - lean, margin_y, rng)
    ink = cv2.GaussianBlur(ink, (0, 0), float(rng.uniform(0.3, 1.2)))
    if family in _RECOLOURED_LCDS:
        glass, segment = _lcd_colours(rng, family)
        image = glass + ink[..., None] * (segment - glass)
    elif style.led:
        glass = np.array([rng.uniform(5, 40)] * 3, np.float32)
        colour = np.array(
            [(40, 40, 255), (60, 255, 80), (255, 200, 60), (60, 160, 255)][int(rng.integers(0, 4))], np.float32
        )
        image = glass + ink[..., None] * (colour - glass) * float(rng.uniform(0.6, 1.0))
    else:
        glass = np.array([rng.uniform(110, 200), rng.uniform(120, 210), rng.uniform(100, 190)], np.float32)
        segment = glass * float(rng.uniform(0.12, 0.55))
        image = glass + ink[..., None] * (segment - glass)
    if family == "unit":
        image = _with_unit(image, glass, image.reshape(-1, 3)[int(np.argmax(ink))], rng, h, margin_x)
    return np.clip(image, 0, 255).astype(np.uint8), shown, style


def _with_row_below(
    ink: np.ndarray, text: str, style: SegmentStyle, right: float, margin: float, rng: np.random.Generator
) -> np.ndarray:
    """The strip's ink with a second reading in digits 0.45-0.75 as high drawn 0.3-0.6 of a digit's height under it,
    its last cell ending at `right` (the first row's); the glass widens to the left for a wider second reading."""
    small = replace(style, digit_height=style.digit_height * float(rng.uniform(0.45, 0.75)))
    n = len(cells_of(text))
    span = (n - 1) * small.aspect * small.digit_height * small.pitch + small.aspect * small.digit_height
    widen = max(0, math.ceil(margin + span - right))
    ink = np.pad(ink, ((0, 0), (widen, 0)))
    gap = max(0.0, style.digit_height * float(rng.uniform(0.3, 0.6)) - margin)  # beyond the first row's margin
    size = (round(gap + small.digit_height + margin), ink.shape[1])
    row, _ = draw_strip_ink(text, small, n, size, (widen + right - span, gap))
    return np.concatenate([ink, row])


def _lcd_colours(rng: np.random.Generator, family: str) -> tuple[np.ndarray, np.ndarray]:
    """Glass and segment colours of a backlit negative LCD or of coloured segments on grey."""
    shade = float(rng.uniform(0.8, 1.1))
    if family == "negative-lcd":
        glass = _NEGATIVE_GLASS[int(rng.integers(len(_NEGATIVE_GLASS)))]
        segment = _NEGATIVE_SEGMENTS[int(rng.integers(len(_NEGATIVE_SEGMENTS)))]
    else:
        glass = (float(rng.uniform(170, 215)),) * 3
        segment = _COLOURED_SEGMENTS[int(rng.integers(len(_COLOURED_SEGMENTS)))]
    return np.array(glass, np.float32) * shade, np.array(segment, np.float32)


def _with_unit(
    image: np.ndarray, glass: np.ndarray, ink: np.ndarray, rng: np.random.Generator, digit_height: float, margin: float
) -> np.ndarray:
    """The glass widened on the right and a unit printed there, a third to a half of a digit high."""
    unit = UNITS[int(rng.integers(len(UNITS)))]
    scale = digit_height * float(rng.uniform(0.33, 0.5)) / 22  # Hershey simplex capitals are about 22 px at scale 1
    thickness = max(1, round(digit_height / 25))
    (tw, th), _ = cv2.getTextSize(unit, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    h, w = image.shape[:2]
    wider = np.concatenate([image, np.broadcast_to(glass, (h, tw + int(margin), 3))], axis=1).copy()
    baseline = int(h - (h - digit_height) / 2) if rng.random() < 0.5 else int((h - digit_height) / 2 + th)
    x = int(w - margin * 0.6)
    cv2.putText(wider, unit, (x, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, ink.tolist(), thickness, cv2.LINE_AA)
    return wider


def _family_led(family: str, rng: np.random.Generator, led: bool | None = None) -> bool | None:
    """Whether the family's display is an LED: never for the recoloured LCDs, as often as not for timers (unless
    `led` says), else `led` (None: the style's own draw)."""
    if family in _RECOLOURED_LCDS:
        return False
    if family == "timer" and led is None:
        return bool(rng.random() < 0.5)
    return led


def crop_margin(seed: int) -> float:
    """A photo's `crop` for `render_photo` of this seed, -0.05 to 0.4: from inside the glass (a region drawn tight
    to the digits) to the bezel and a little of the panel."""
    return float(np.random.default_rng(seed + 777).uniform(-0.05, 0.4))


def render_photo(
    text: str,
    seed: int,
    led: bool | None = None,
    difficulty: float = 0.5,
    family: str = "plain",
    colon_lit: bool = True,
    crop: float | None = None,
) -> tuple[np.ndarray, SegmentStyle]:
    """A phone photo of a panel with the display in it (BGR uint8), for tests and the benchmark.

    `difficulty` 0..1 scales tilt, blur, glare and noise; `family` is one of FAMILIES; `colon_lit` False shows a
    time's colons off, as a clock's blink does; `crop`, the photo cut to the glass's box widened by this share of
    the glass's height on every side (negative: inside the glass, as a fixed camera's region drawn tight to the digits).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown display family {family!r}; expected one of {FAMILIES}")
    rng = np.random.default_rng(seed)
    style = random_style(rng, digit_height=float(rng.uniform(50, 110)))
    led = _family_led(family, rng, led)
    if led is not None:
        style = replace(style, led=led)
    below = random_reading(rng) if family == "two-row" else None
    strip, _, style = render_strip(text, rng, style, family=family, below=below, colon_lit=colon_lit)
    sh, sw = strip.shape[:2]
    border = max(4, sh // 12)
    framed = cv2.copyMakeBorder(strip, border, border, border, border, cv2.BORDER_CONSTANT, value=(35, 35, 35))
    panel_colour = np.array([rng.uniform(170, 240)] * 3, np.float32) + rng.uniform(-15, 15, 3)
    ph, pw = int(framed.shape[0] * rng.uniform(2.2, 3.5)), int(framed.shape[1] * rng.uniform(1.3, 1.9))
    panel = np.ones((ph, pw, 3), np.float32) * panel_colour
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    panel *= (1 + 0.15 * difficulty * ((xx / pw - 0.5) * rng.uniform(-1, 1) + (yy / ph - 0.5) * rng.uniform(-1, 1)))[
        ..., None
    ]
    top = int((ph - framed.shape[0]) * rng.uniform(0.2, 0.5))
    left = (pw - framed.shape[1]) // 2
    panel[top : top + framed.shape[0], left : left + framed.shape[1]] = framed
    label_y = top + framed.shape[0] + int(sh * 0.45)
    scale = sh / 60
    cv2.putText(panel, "UNITS", (left + framed.shape[1] // 3, label_y), cv2.FONT_HERSHEY_DUPLEX, scale, (25, 25, 25), 2)
    if rng.random() < difficulty:  # glare: a soft bright patch over the glass
        cx, cy = left + rng.uniform(0, framed.shape[1]), top + rng.uniform(0, framed.shape[0])
        glare = np.exp(-(((xx - cx) / (sw * 0.15)) ** 2 + ((yy - cy) / (sh * 0.4)) ** 2))
        panel += glare[..., None] * 70 * difficulty
    tilt = 0.08 * difficulty
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    dst = src + rng.uniform(-tilt, tilt, (4, 2)).astype(np.float32) * np.float32([pw, ph])
    warp = cv2.getPerspectiveTransform(src, dst)
    photo = cv2.warpPerspective(
        np.clip(panel, 0, 255).astype(np.uint8), warp, (pw, ph), borderMode=cv2.BORDER_REPLICATE
    )
    photo = cv2.GaussianBlur(photo, (0, 0), 0.4 + 1.2 * difficulty * rng.random())
    noise = rng.normal(0, 2 + 6 * difficulty, photo.shape)
    photo = np.clip(photo + noise, 0, 255).astype(np.uint8)
    if crop is not None:
        glass = np.float32([[0, 0], [sw, 0], [sw, sh], [0, sh]]) + np.float32([left + border, top + border])
        seen = cv2.perspectiveTransform(glass[None], warp)[0]
        (x0, y0), (x1, y1), m = seen.min(0), seen.max(0), crop * sh
        photo = photo[max(0, round(y0 - m)) : round(y1 + m), max(0, round(x0 - m)) : round(x1 + m)]
    return photo, style


TRAINING_FAMILIES = {"plain": 0.45, "negative-lcd": 0.15, "coloured-lcd": 0.15, "unit": 0.15, "timer": 0.1}  # shares
# (not `two-row`: each of its rows is read as a strip of its own)


def render_training_strip(rng: np.random.Generator) -> tuple[np.ndarray, str, bool]:
    """One training example: a strip as the reader would cut it from a real photo, the
    characters it still shows, and whether its segments are brighter than the glass.

    The strips come from every photo family (TRAINING_FAMILIES): a unit after the digits is
    part of the strip and not of the text, so the reader learns to leave it out. Real crops are
    imperfect: cut through a digit at either end, a strip of panel or the display's rim above or
    below, tilted a little, with glare, shading, blur and JPEG noise. A character cut so that it
    is neither clearly in nor clearly out makes the example ambiguous, and it is drawn again.
    """
    while True:
        family = str(rng.choice(list(TRAINING_FAMILIES), p=list(TRAINING_FAMILIES.values())))
        text = family_reading(rng, family)
        style = random_style(rng, digit_height=float(rng.uniform(28, 90)))
        if (led := _family_led(family, rng)) is not None:
            style = replace(style, led=led)
        strip, shown, style = render_strip(text, rng, style, family=family)
        h, w = strip.shape[:2]
        cut_left = rng.uniform(0, w * 0.25) if rng.random() < 0.3 else 0.0
        cut_right = rng.uniform(0, w * 0.25) if rng.random() < 0.3 else 0.0
        x0, x1 = cut_left, w - cut_right
        label, ambiguous = [], False
        for ch, a, b in shown:
            visible = max(0.0, min(b, x1) - max(a, x0)) / (b - a)
            if visible >= 0.7 or (ch in ".:" and visible > 0.99):
                label.append(ch)
            elif visible > 0.2:
                ambiguous = True
        text = "".join(label).strip(".:")  # a point or colon at the cut's edge belongs to no reading
        if ambiguous or not text:
            continue
        strip = strip[:, int(x0) : int(math.ceil(x1))]
        bright = style.led or family == "negative-lcd"
        return _photograph_strip(strip, rng, style.led), text, bright


def _photograph_strip(strip: np.ndarray, rng: np.random.Generator, led: bool) -> np.ndarray:
    image = _framed(strip.astype(np.float32), rng)
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image *= (1 + rng.uniform(-0.3, 0.3) * (xx / w - 0.5) + rng.uniform(-0.2, 0.2) * (yy / h - 0.5))[..., None]
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), float(rng.uniform(1, 6)))
    image += (grain / (grain.std() + 1e-6) * rng.uniform(0, 12))[..., None]
    for _ in range(int(rng.integers(0, 3))):  # glare and reflections: soft bright or dark patches
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy = w * rng.uniform(0.03, 0.3), h * rng.uniform(0.1, 0.8)
        patch = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))
        image += patch[..., None] * rng.uniform(-40, 110) * (rng.uniform(0.7, 1.0, 3) if led else 1.0)
    if rng.random() < 0.4:  # a veil of reflected light: under it the segments fade into the glass
        veil = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), h * float(rng.uniform(0.3, 1.0)))
        veil = (veil - veil.min()) / (float(np.ptp(veil)) + 1e-6) * float(rng.uniform(0.3, 0.75))
        image = image * (1 - veil[..., None]) + float(np.median(image)) * veil[..., None]
    for _ in range(int(rng.integers(0, 4))):  # scratches on the glass
        p0 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        p1 = (int(p0[0] + rng.uniform(-w / 3, w / 3)), int(p0[1] + rng.uniform(-h / 2, h / 2)))
        cv2.line(image, p0, p1, [float(rng.uniform(-30, 30))] * 3, 1, cv2.LINE_AA)
    angle = rng.uniform(-2.5, 2.5)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    jitter = rng.uniform(-0.04, 0.04, (4, 2)).astype(np.float32) * np.float32([w * 0.2, h])
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    p = cv2.getPerspectiveTransform(src, src + jitter) @ np.vstack([m, [0, 0, 1]])
    image = cv2.warpPerspective(image, p, (w, h), borderMode=cv2.BORDER_REPLICATE)
    image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.3, 1.5)) * h / 60)
    image += rng.normal(0, rng.uniform(1, 10), image.shape).astype(np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return image


def _framed(glass: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a straightened crop catches around the glass: on some sides the display's dark rim
    and a band of the lighter panel beyond it, on others a cut into the glass itself."""
    h = glass.shape[0]
    panel = float(rng.uniform(140, 240))
    rim = float(rng.uniform(10, 70))
    for side in range(4):
        roll = rng.random()
        if roll < 0.3:
            rim_px, panel_px = int(h * rng.uniform(0.01, 0.05)) + 1, int(h * rng.uniform(0, 0.25))
            glass = _pad(glass, rim_px, rim)
            glass = _pad(glass, panel_px, panel) if panel_px else glass
        elif roll < 0.4 and side % 2 == 0:  # top or bottom: cut a little into the glass
            glass = glass[int(h * rng.uniform(0, 0.06)) :]
        glass = np.rot90(glass).copy()
    return glass


def _pad(image: np.ndarray, size: int, value: float) -> np.ndarray:
    """Add `size` rows of `value` above the image."""
    return np.vstack([np.full((size, *image.shape[1:]), value, np.float32), image])
