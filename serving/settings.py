"""Service settings: a YAML file validated into typed settings, errors naming the key.

Every key is optional; the defaults here are the ones documented in configs/serve.yaml.
Relative paths are taken from the directory the service is started in.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from annotation.config_loader import StrictModel as _Strict
from annotation.config_loader import load_config
from vision.preprocess import DEFAULT_MAX_PIXELS


def cpu_count() -> int:
    """Cores this process may run on (a container's CPU set, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"


class EngineSettings(_Strict):
    providers: list[str] | None = None  # None: CUDA when available, else CPU
    intra_op_threads: int = Field(0, ge=0)  # 0: one per core
    decode_threads: int = Field(0, ge=0)  # 0: one per core
    max_batch_size: int = Field(32, ge=1, le=1024)
    max_wait_ms: float = Field(20.0, ge=0, le=1000)

    def threads(self) -> tuple[int, int]:
        """(inference intra-op threads, decode threads) with 0 resolved to the core count."""
        return self.intra_op_threads or cpu_count(), self.decode_threads or cpu_count()


class LimitSettings(_Strict):
    max_body_mb: float = Field(20.0, gt=0)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=256)
    max_batch_images: int = Field(64, ge=1)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


class AuthSettings(_Strict):
    mode: Literal["keys", "disabled"] = "keys"  # disabled: only on a trusted network
    refresh_seconds: float = Field(2.0, gt=0)  # how soon `lineinspect keys create/revoke` takes effect


class KeepImages(_Strict):
    """Image bytes worth re-annotating: every defect, and scores close to the threshold."""

    defects: bool = False
    band: float = Field(0.0, ge=0, le=1)  # keep when |score - threshold| < band; 0 keeps none
    dir: Path | None = None  # None: <data_dir>/images


class RecordSettings(_Strict):
    queue_size: int = Field(10_000, ge=1)
    batch_size: int = Field(500, ge=1)
    max_delay_ms: float = Field(100.0, ge=0)  # records gather this long into one insert
    retry_seconds: float = Field(5.0, gt=0)
    fsync: bool = False  # journal each record to disk before answering (survives power loss, not just a kill)
    keep_images: KeepImages = KeepImages()


class OcrSettings(_Strict):
    """Labels and gauges read by /v1/ocr/* and by /v1/inspect?ocr=TEMPLATE."""

    config_dir: Path | None = None  # labels/NAME.yaml and gauges/NAME.yaml; None: the shipped configs/ocr
    engine: Literal["pytesseract", "tesserocr"] = "pytesseract"  # tesserocr: Tesseract kept loaded, one at a time
    max_concurrency: int = Field(0, ge=0)  # images read at once (Tesseract is CPU-bound); 0: one per core


class LabelStudioSettings(_Strict):
    """The ML-backend protocol at /labelstudio: where task images come from, which choices to answer."""

    url: str | None = None  # Label Studio's address for task images; None: the hostname it sent to /setup
    token: str | None = None  # None: $LABEL_STUDIO_API_KEY, else the token Label Studio sent to /setup
    from_name: str | None = None  # the Choices control to answer; None: the only one on an image
    label_map: dict[str, str] = Field(default_factory=dict)  # verdict -> the project's choice, when named otherwise

    def resolved_token(self) -> str | None:
        return self.token or os.environ.get("LABEL_STUDIO_API_KEY")


RULES = ("beyond_3sigma", "2_of_3_beyond_2sigma", "4_of_5_beyond_1sigma", "8_same_side", "6_trending")
Rule = Literal["beyond_3sigma", "2_of_3_beyond_2sigma", "4_of_5_beyond_1sigma", "8_same_side", "6_trending"]


class SubgroupSettings(_Strict):
    """How records are grouped into the points of a chart: a count of records, or a time window."""

    size: int | None = Field(None, ge=2)  # consecutive records per subgroup
    minutes: float | None = Field(None, gt=0)  # or: records in windows of this many minutes

    @model_validator(mode="after")
    def _one_way(self) -> SubgroupSettings:
        if (self.size is None) == (self.minutes is None):
            raise ValueError("give exactly one of size (records) and minutes (a time window)")
        return self


class MonitorSettings(_Strict):
    """SPC charts and input drift per line, evaluated in the background against each line's baseline."""

    enabled: bool = True
    interval_seconds: float = Field(30.0, gt=0)  # how often every line with a baseline is evaluated
    subgroup: SubgroupSettings = SubgroupSettings(size=200)  # a baseline may set its own
    rules: list[Rule] = Field(default_factory=lambda: list(RULES))  # Western Electric rules on the p-chart
    ewma_lambda: float = Field(0.2, gt=0, le=1)  # EWMA weight of the newest subgroup's mean score
    ewma_sigmas: float = Field(3.0, gt=0)  # EWMA limits at this many standard deviations
    psi_alarm: float = Field(0.25, gt=0)  # population stability index that counts as a changed distribution
    dark_ratio: float = Field(0.7, gt=0, lt=1)  # median brightness below this fraction of the baseline: dark
    bright_ratio: float = Field(1.3, gt=1)  # above this multiple: bright
    blur_ratio: float = Field(0.5, gt=0, lt=1)  # median sharpness below this fraction: blurred
    low_contrast_ratio: float = Field(0.6, gt=0, lt=1)  # median contrast below this fraction: low contrast
    min_drift_records: int = Field(30, ge=5)  # a camera's subgroup needs this many records to be judged
    dashboard_refresh_seconds: float = Field(10.0, ge=1)  # how often /dashboard redraws


class ServeSettings(_Strict):
    model: Path | None = None  # the ONNX model to serve; `--model` overrides
    model_dirs: list[Path] = Field(default_factory=list)  # reload allow-list; empty: the folder of `model`
    data_dir: Path = Path("data")
    database_url: str | None = None  # None: SQLite file in data_dir; or postgresql+psycopg://...
    instance: str | None = None  # this instance's name in /metrics and its logs; None: host name:port
    cors_origins: list[str] = Field(default_factory=list)  # empty: CORS off
    server: ServerSettings = ServerSettings()
    engine: EngineSettings = EngineSettings()
    limits: LimitSettings = LimitSettings()
    auth: AuthSettings = AuthSettings()
    records: RecordSettings = RecordSettings()
    ocr: OcrSettings = OcrSettings()
    labelstudio: LabelStudioSettings = LabelStudioSettings()
    monitor: MonitorSettings = MonitorSettings()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'lineinspect.db').resolve()}"

    @property
    def instance_name(self) -> str:
        return self.instance or f"{socket.gethostname()}:{self.server.port}"

    @property
    def allowed_model_dirs(self) -> list[Path]:
        dirs = self.model_dirs or ([self.model.parent] if self.model else [])
        return [d.resolve() for d in dirs]

    @property
    def images_dir(self) -> Path:
        return self.records.keep_images.dir or self.data_dir / "images"


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> ServeSettings:
    """Read the service YAML (built-in defaults when `path` is None) and apply dotted-key overrides."""
    if path is None:
        return load_config(ServeSettings, None, overrides, source="settings")
    return load_config(ServeSettings, Path(path), overrides)
