"""The database's tables, declared once (serving/migrations creates them); times are stored as naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()
VIEWS = ("inspection_facts",)  # read-only views for BI tools, made by the migrations (0005)
inspections = sa.Table(
    "inspections", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    *(sa.Column(name, sa.String(128)) for name in ("line", "station", "camera", "part_id", "client")),
    sa.Column("image_sha256", sa.String(64)),
    sa.Column("image_bytes", sa.Integer(), nullable=False),
    sa.Column("image_path", sa.String(1024)),
    sa.Column("model_name", sa.String(128)),
    sa.Column("model_version", sa.String(128)),
    sa.Column("model_sha256", sa.String(64)),
    sa.Column("threshold", sa.Float()),
    sa.Column("score", sa.Float()),
    sa.Column("verdict", sa.String(16)),
    sa.Column("label", sa.String(128)),
    *(sa.Column(f"{stage}_ms", sa.Float()) for stage in ("decode", "preprocess", "queue", "infer", "total")),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error", sa.Text()),
    sa.Column("ocr_template", sa.String(128)),
    sa.Column("ocr_fields", sa.JSON()),
    sa.Column("ocr_missing", sa.Boolean()),
    sa.Column("ocr_problems", sa.Text()),
    sa.Column("ocr_ms", sa.Float()),
    *(sa.Column(name, sa.Float()) for name in ("brightness", "contrast", "sharpness")),
)  # fmt: skip
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("revoked_at", sa.DateTime()),
)  # fmt: skip
model_loads = sa.Table(
    "model_loads", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("loaded_at", sa.DateTime(), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("path", sa.String(1024), nullable=False),
)  # fmt: skip
baselines = sa.Table(
    "baselines", metadata,
    sa.Column("line", sa.String(128), primary_key=True),
    sa.Column("since", sa.DateTime(), nullable=False),
    sa.Column("until", sa.DateTime(), nullable=False),
    sa.Column("subgroup_size", sa.Integer()),
    sa.Column("subgroup_minutes", sa.Float()),
    sa.Column("set_at", sa.DateTime(), nullable=False),
    sa.Column("set_by", sa.String(128)),
    sa.Column("note", sa.Text()),
)  # fmt: skip
alarms = sa.Table(
    "alarms", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("line", sa.String(128), nullable=False),
    sa.Column("subgroup_start", sa.DateTime(), nullable=False),  # the subgroup of the rule that opened it
    sa.Column("raised_at", sa.DateTime(), nullable=False),
    sa.Column("acknowledged_at", sa.DateTime()),
    sa.Column("acknowledged_by", sa.String(128)),
    sa.Column("note", sa.Text()),
)  # fmt: skip
alarm_rules = sa.Table(
    "alarm_rules", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("alarm_id", sa.Integer(), sa.ForeignKey("alarms.id"), nullable=False),
    sa.Column("line", sa.String(128), nullable=False),
    sa.Column("chart", sa.String(32), nullable=False),  # p | ewma | drift
    sa.Column("camera", sa.String(128), nullable=False),  # drift: the camera; "" for the line's charts
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("subgroup_start", sa.DateTime(), nullable=False),
    sa.Column("subgroup_end", sa.DateTime(), nullable=False),
    sa.Column("value", sa.Float(), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("raised_at", sa.DateTime(), nullable=False),
    sa.UniqueConstraint("line", "chart", "camera", "rule", "subgroup_start", name="uq_alarm_rules_episode"),
)  # fmt: skip


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
