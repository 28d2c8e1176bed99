"""Inspections, API keys and the models loaded.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("line", sa.String(128)),
        sa.Column("station", sa.String(128)),
        sa.Column("camera", sa.String(128)),
        sa.Column("part_id", sa.String(128)),
        sa.Column("client", sa.String(128)),
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
        sa.Column("decode_ms", sa.Float()),
        sa.Column("preprocess_ms", sa.Float()),
        sa.Column("queue_ms", sa.Float()),
        sa.Column("infer_ms", sa.Float()),
        sa.Column("total_ms", sa.Float()),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_inspections_created_at", "inspections", ["created_at"])
    op.create_index("ix_inspections_line_station_camera", "inspections", ["line", "station", "camera"])
    op.create_index("ix_inspections_verdict", "inspections", ["verdict"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, index=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_table(
        "model_loads",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_loads")
    op.drop_table("api_keys")
    op.drop_table("inspections")
