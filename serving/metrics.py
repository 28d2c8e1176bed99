"""The service's Prometheus metrics, in a registry of its own so that two services in one process stay apart."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
OCR_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0)  # a label takes seconds
STAGES = ("decode", "preprocess", "queue", "infer", "total")


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "lineinspect_http_requests", "HTTP requests by route, method and status.", ["route", "method", "status"],
            registry=r,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "lineinspect_http_request_seconds", "HTTP request latency by route.", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.stage_seconds = Histogram(
            "lineinspect_stage_seconds", "Time per image in each stage: decode, preprocess, queue, infer, total.",
            ["stage"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._stages = {stage: self.stage_seconds.labels(stage) for stage in STAGES}
        self.batch_size = Histogram(
            "lineinspect_batch_size", "Images per inference.", buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("lineinspect_queue_depth", "Decoded images waiting for inference.", registry=r)
        self.preparing = Gauge("lineinspect_preparing", "Images being decoded and preprocessed.", registry=r)
        self.verdicts = Counter("lineinspect_verdicts", "Verdicts by line.", ["line", "verdict"], registry=r)
        self.model_info = Gauge(
            "lineinspect_model_info", "The model being served (value 1).", ["name", "version", "sha256"], registry=r
        )
        self.model_ready = Gauge("lineinspect_model_ready", "1 when a model is loaded and warmed up.", registry=r)
        self.rejected = Counter(
            "lineinspect_rejected", "Requests refused, by reason (error code).", ["reason"], registry=r
        )
        self.ocr_seconds = Histogram(
            "lineinspect_ocr_seconds", "OCR time per image by kind (label, digital, analog) and stage (queue, read).",
            ["kind", "stage"], buckets=OCR_BUCKETS, registry=r,
        )  # fmt: skip
        self.ocr_results = Counter(
            "lineinspect_ocr_results",
            "OCR readings by kind and result: read (status ok), uncertain (a best guess), fields_missing, or the "
            "reason nothing was read.",
            ["kind", "result"], registry=r,
        )  # fmt: skip
        self.labelstudio = Counter(
            "lineinspect_labelstudio_calls", "ML-backend calls from Label Studio by endpoint and outcome.",
            ["endpoint", "outcome"], registry=r,
        )  # fmt: skip
        self.records_written = Counter(
            "lineinspect_records_written",
            "Records stored in the database (one already stored, replayed or retried, is not counted again).",
            registry=r,
        )
        self.idempotent_retries = Counter(
            "lineinspect_idempotent_retries",
            "Requests sent again with an Idempotency-Key already stored: answered, not stored again.",
            registry=r,
        )
        self.records_spooled = Counter("lineinspect_records_spooled", "Records spooled to JSONL.", registry=r)
        self.records_lost = Counter("lineinspect_records_lost", "Records neither stored nor spooled.", registry=r)
        self.records_held = Gauge(
            "lineinspect_records_held",
            "Records held in memory: neither the database nor the spool takes them.",
            registry=r,
        )
        self.record_queue_depth = Gauge("lineinspect_record_queue_depth", "Records waiting to be written.", registry=r)
        self.spool_pending = Gauge("lineinspect_spool_pending", "Spooled records not yet in the database.", registry=r)
        self.database_up = Gauge("lineinspect_database_up", "1 when the last database write succeeded.", registry=r)
        self.alarms_open = Gauge(
            "lineinspect_alarms_open", "Line alarms (one per event, listing its rules) not yet acknowledged, by line.",
            ["line"], registry=r,
        )  # fmt: skip
        self.alarm_rules_open = Gauge(
            "lineinspect_alarm_rules_open", "Rules listed by alarms not yet acknowledged, by line, chart and rule.",
            ["line", "chart", "rule"], registry=r,
        )  # fmt: skip
        self.out_of_control = Gauge(
            "lineinspect_out_of_control", "1 when a rule holds at the chart's newest subgroup, by line and chart.",
            ["line", "chart"], registry=r,
        )  # fmt: skip
        self.monitor_evaluated = Gauge(
            "lineinspect_monitor_evaluated_timestamp_seconds", "When the lines were last evaluated (Unix time).",
            registry=r,
        )  # fmt: skip
        self.instance_info = Gauge(
            "lineinspect_instance_info", "This service instance (value 1): its name and its database's kind.",
            ["instance", "database"], registry=r,
        )  # fmt: skip

    def set_model(self, name: str, version: str, sha256: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version, sha256).set(1)
        self.model_ready.set(1)

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self._stages[stage].observe(ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
