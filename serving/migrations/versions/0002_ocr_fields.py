"""OCR on inspections: the label template read with the verdict, its fields, and whether any were missing.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("ocr_template", sa.String(128)))
        batch.add_column(sa.Column("ocr_fields", sa.JSON()))
        batch.add_column(sa.Column("ocr_missing", sa.Boolean()))
        batch.add_column(sa.Column("ocr_problems", sa.Text()))
        batch.add_column(sa.Column("ocr_ms", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        for name in ("ocr_ms", "ocr_problems", "ocr_missing", "ocr_fields", "ocr_template"):
            batch.drop_column(name)
