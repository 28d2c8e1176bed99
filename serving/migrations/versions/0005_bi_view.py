"""A read-only view for BI tools: `inspection_facts`, one row per inspection with the traceability columns (line,
station, camera, part, model, the label's lot) and the verdict as numbers a spreadsheet or a dashboard sums.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    "id, created_at, line, station, camera, part_id, client, model_name, model_version, threshold, score, verdict, "
    "CASE WHEN verdict = 'defect' THEN 1 ELSE 0 END AS is_defect, "
    "CASE WHEN error_code IS NULL THEN 0 ELSE 1 END AS refused, error_code, "
    "{lot} AS lot, ocr_template, ocr_missing, total_ms, brightness, contrast, sharpness"
)
LOT = {"sqlite": "json_extract(ocr_fields, '$.lot')", "postgresql": "(ocr_fields ->> 'lot')"}


def upgrade() -> None:
    lot = LOT[op.get_bind().dialect.name]
    op.execute(f"CREATE VIEW inspection_facts AS SELECT {COLUMNS.format(lot=lot)} FROM inspections")


def downgrade() -> None:
    op.execute("DROP VIEW inspection_facts")
