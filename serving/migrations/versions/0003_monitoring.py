"""Line monitoring: image quality on each inspection, a baseline per line, and the alarms raised.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        for name in ("brightness", "contrast", "sharpness"):
            batch.add_column(sa.Column(name, sa.Float()))
    op.create_index("ix_inspections_line_created_at", "inspections", ["line", "created_at"])
    op.create_table(
        "baselines",
        sa.Column("line", sa.String(128), primary_key=True),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("subgroup_size", sa.Integer()),
        sa.Column("subgroup_minutes", sa.Float()),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.Column("set_by", sa.String(128)),
        sa.Column("note", sa.Text()),
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("line", sa.String(128), nullable=False),
        sa.Column("chart", sa.String(32), nullable=False),
        sa.Column("camera", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("subgroup_start", sa.DateTime(), nullable=False),
        sa.Column("subgroup_end", sa.DateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime()),
        sa.Column("acknowledged_by", sa.String(128)),
        sa.Column("note", sa.Text()),
        sa.UniqueConstraint("line", "chart", "camera", "rule", "subgroup_start", name="uq_alarms_episode"),
    )
    op.create_index("ix_alarms_line_acknowledged_at", "alarms", ["line", "acknowledged_at"])


def downgrade() -> None:
    op.drop_table("alarms")
    op.drop_table("baselines")
    op.drop_index("ix_inspections_line_created_at", "inspections")
    with op.batch_alter_table("inspections") as batch:
        for name in ("sharpness", "contrast", "brightness"):
            batch.drop_column(name)
