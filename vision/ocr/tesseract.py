"""Tesseract behind one small interface, two ways to call it.

`pytesseract` runs the `tesseract` program once per call: simple and always available with
Debian's package, but every call pays for a new process and for loading the language model
(130-420 ms here). `tesserocr` keeps the library loaded in this process and answers the same
request about twice as fast. Both return Tesseract's TSV, parsed once here, and both run
Debian's Tesseract (tesserocr is built against it, see the Makefile), so the readers cannot
tell them apart except by the clock.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from annotation.errors import LineInspectError

INSTALL_HINT = "install it: apt-get install tesseract-ocr tesseract-ocr-kor"
# The tesseract program reads pytesseract's PNG, which carries no resolution, as 70 dpi (and then
# estimates it from the text); tesserocr gets a PIL image, which PIL hands over stamped 96 dpi.
# Telling tesserocr the program's figure makes the two read a page alike.
CLI_ASSUMED_DPI = 70
_TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)


@dataclass(frozen=True)
class TsvWord:
    text: str
    confidence: float  # 0..100
    left: int
    top: int
    width: int
    height: int
    line_key: tuple[int, int, int]  # (block, paragraph, line): Tesseract's own line grouping


class Engine(Protocol):
    name: str

    def words(self, image: np.ndarray, languages: str, psm: int) -> list[TsvWord]: ...

    def orientation(self, image: np.ndarray) -> int | None:
        """Clockwise degrees (0, 90, 180, 270) the image must be rotated to read upright, if known."""
        ...


def parse_tsv(tsv: str) -> list[TsvWord]:
    """Tesseract's TSV (with or without its header row) to words; only level-5 rows are words."""
    words = []
    for row in tsv.splitlines():
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        words.append(
            TsvWord(
                text=cols[11].strip(),
                confidence=float(cols[10]),
                left=int(cols[6]),
                top=int(cols[7]),
                width=int(cols[8]),
                height=int(cols[9]),
                line_key=(int(cols[2]), int(cols[3]), int(cols[4])),
            )
        )
    return words


def limit_openmp() -> None:
    """One OpenMP thread per Tesseract call unless OMP_THREAD_LIMIT says otherwise: Debian's Tesseract otherwise
    runs threads that fight each other and other work on a small machine (a label took 4.2 s instead of 1.3 s).

    For torch-free commands only, called before Tesseract first loads: libgomp reads the variable once per
    process, and torch's training spins under it."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def tessdata_dir() -> str | None:
    prefix = os.environ.get("TESSDATA_PREFIX")
    if prefix:
        return prefix
    return next((d for d in _TESSDATA_DIRS if Path(d, "eng.traineddata").is_file()), None)


class PytesseractEngine:
    name = "pytesseract"

    def __init__(self) -> None:
        import pytesseract

        self._tess = pytesseract
        try:
            pytesseract.get_tesseract_version()
        except pytesseract.TesseractNotFoundError:
            raise LineInspectError(f"the tesseract program was not found; {INSTALL_HINT}") from None

    def words(self, image: np.ndarray, languages: str, psm: int) -> list[TsvWord]:
        try:
            tsv = self._tess.image_to_data(Image.fromarray(image), lang=languages, config=f"--psm {psm}")
        except self._tess.TesseractError as exc:
            raise LineInspectError(
                f"tesseract failed ({exc.message.strip()}); for languages {languages!r} "
                f"install their traineddata, e.g. tesseract-ocr-kor"
            ) from None
        return parse_tsv(tsv)

    def orientation(self, image: np.ndarray) -> int | None:
        try:
            osd = self._tess.image_to_osd(Image.fromarray(image), config="--psm 0")
        except self._tess.TesseractError:
            return None  # too little text to judge
        for line in osd.splitlines():
            if line.startswith("Rotate:"):
                return int(line.split(":")[1])
        return None


class TesserocrEngine:
    """One loaded Tesseract per (languages, psm), reused; a lock per instance (not thread-safe)."""

    name = "tesserocr"

    def __init__(self) -> None:
        try:
            import tesserocr
        except ImportError:
            raise LineInspectError("engine 'tesserocr' needs the tesserocr package: pip install tesserocr") from None
        self._lib = tesserocr
        self._path = tessdata_dir()
        if self._path is None:
            raise LineInspectError(f"no Tesseract language data found (set TESSDATA_PREFIX or {INSTALL_HINT})")
        self._apis: dict[tuple[str, int], object] = {}
        self._lock = threading.Lock()

    def _api(self, languages: str, psm: int):
        key = (languages, psm)
        if key not in self._apis:
            try:
                self._apis[key] = self._lib.PyTessBaseAPI(path=self._path, lang=languages, psm=psm)
            except RuntimeError:
                raise LineInspectError(
                    f"Tesseract could not load {languages!r} from {self._path}; {INSTALL_HINT}"
                ) from None
        return self._apis[key]

    def words(self, image: np.ndarray, languages: str, psm: int) -> list[TsvWord]:
        with self._lock:
            api = self._api(languages, psm)
            api.SetImage(Image.fromarray(image))
            api.SetSourceResolution(CLI_ASSUMED_DPI)
            return parse_tsv(api.GetTSVText(0))

    def orientation(self, image: np.ndarray) -> int | None:
        with self._lock:
            api = self._api("osd", self._lib.PSM.OSD_ONLY)
            api.SetImage(Image.fromarray(image))
            api.SetSourceResolution(CLI_ASSUMED_DPI)
            osd = api.DetectOrientationScript()
        if not osd:
            return None
        return (360 - int(osd["orient_deg"])) % 360


_ENGINES: dict[str, Engine] = {}


def get_engine(name: str = "pytesseract") -> Engine:
    """The engine called `name`, created once per process."""
    if name not in ("pytesseract", "tesserocr"):
        raise LineInspectError(f"unknown OCR engine {name!r}: use pytesseract, tesserocr or (labels) rapidocr")
    if name not in _ENGINES:
        _ENGINES[name] = PytesseractEngine() if name == "pytesseract" else TesserocrEngine()
    return _ENGINES[name]
