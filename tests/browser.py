"""Render pages in Debian's headless Chromium and look at the result: screenshots, DOM after scripts, OCR, colours.

Chromium runs in its (new) headless mode with ``--virtual-time-budget``: the shot is taken once the page has loaded
and ``wait_ms`` of virtual time has passed. Virtual time stands still while network requests are pending, so
``fetch()`` calls to the page's own origin finish (and their DOM updates run) before the shot, however slow the
server. Two limits follow: a request that never ends (EventSource, long polling) stalls the shot until the timeout,
and ``requestAnimationFrame`` runs in real time, so animated charts must be drawn without animation.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytesseract

TIMEOUT_S = 120


def chromium() -> str:
    """Path of the chromium executable (Debian package ``chromium``)."""
    path = shutil.which("chromium")
    assert path, "chromium not found: apt-get install chromium (make system-deps)"
    return path


def _run(args: list[str], url: str, wait_ms: int) -> subprocess.CompletedProcess[str]:
    """Run headless chromium on url with a fresh profile; fail with chromium's stderr tail."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={wait_ms}",
            *args,
            url,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise AssertionError(f"chromium timed out after {TIMEOUT_S} s on {url}\n{_tail(stderr)}") from None
    if proc.returncode != 0 or "Page load failed" in proc.stderr:
        raise AssertionError(f"chromium failed (rc {proc.returncode}) on {url}\n{_tail(proc.stderr)}")
    return proc


def _tail(stderr: str, lines: int = 20) -> str:
    """Last lines of chromium's stderr, without the D-Bus noise of a container."""
    kept = [line for line in stderr.splitlines() if "dbus" not in line and "unexpected operator" not in line]
    return "\n".join(kept[-lines:])


def screenshot(url: str, out: Path, width: int = 1280, height: int = 1600, wait_ms: int = 3000) -> Path:
    """PNG of the page at url (file:// or http://) in a width x height window, after wait_ms of virtual time."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    proc = _run(["--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={out}"], url, wait_ms)
    if not out.is_file() or out.stat().st_size == 0:
        raise AssertionError(f"chromium wrote no screenshot for {url}\n{_tail(proc.stderr)}")
    return out


def dump_dom(url: str, wait_ms: int = 3000) -> str:
    """Serialized DOM of the page at url after wait_ms of virtual time (scripts and their fetches have run)."""
    return _run(["--dump-dom"], url, wait_ms).stdout


def _load_rgb(png: Path) -> np.ndarray:
    """The image as an RGB uint8 array."""
    image = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read image {png}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def text_in(png: Path, scale: float = 2.0, strip: int = 800) -> str:
    """Lower-cased Tesseract OCR of the screenshot, upscaled for small UI text; a tall page is read in overlapping
    strips (Tesseract loses lines on very tall pages)."""
    gray = cv2.cvtColor(_load_rgb(png), cv2.COLOR_RGB2GRAY)
    texts = []
    for top in range(0, gray.shape[0], strip - 100):
        part = gray[top : top + strip]
        if scale != 1:
            part = cv2.resize(part, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        texts.append(pytesseract.image_to_string(part).lower())
    return "\n".join(texts)


def colour_fraction(
    png: Path, rgb: tuple[int, int, int], tol: int = 40, box: tuple[int, int, int, int] | None = None
) -> float:
    """Fraction of pixels within tol of rgb on every channel, optionally inside box = (left, top, right, bottom)."""
    image = _load_rgb(png).astype(np.int16)
    if box is not None:
        left, top, right, bottom = box
        image = image[top:bottom, left:right]
    if image.size == 0:
        return 0.0
    close = np.all(np.abs(image - np.array(rgb, dtype=np.int16)) <= tol, axis=-1)
    return float(close.mean())
