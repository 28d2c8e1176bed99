"""One alarm per event: an alarm lists the rules it fired (alarm_rules) and is acknowledged once.

Existing per-rule alarms are grouped by the rule the service now applies: an open one joins the line's group before
it while within WINDOW subgroups of that group's newest rule, a subgroup's length read from that rule's own start and
end (the subgroups themselves were not stored); acknowledged ones stay alarms of their own, with who acknowledged
them, when and why. An alarm keeps the id of its first rule.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WINDOW = 8  # subgroups (serving.monitor.lines.ALARM_WINDOW when this revision was written)
RULE_COLUMNS = ("line", "chart", "camera", "rule", "subgroup_start", "subgroup_end", "value", "detail", "raised_at")
ACK_COLUMNS = ("acknowledged_at", "acknowledged_by", "note")
TIMES = ("subgroup_start", "subgroup_end", "raised_at", "acknowledged_at")
PER_RULE = ("chart", "camera", "rule", "subgroup_end", "value", "detail")  # move from alarms to alarm_rules


def _table(name: str, *columns: str) -> sa.TableClause:
    """The columns of a table as this revision finds them, times typed as times."""
    return sa.table(name, *(sa.column(c, sa.DateTime() if c in TIMES else None) for c in columns))


def _rule_columns() -> list[sa.Column]:
    return [
        sa.Column("line", sa.String(128), nullable=False),
        sa.Column("chart", sa.String(32), nullable=False),
        sa.Column("camera", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("subgroup_start", sa.DateTime(), nullable=False),
        sa.Column("subgroup_end", sa.DateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
    ]


def _groups(rows: list[dict]) -> list[list[dict]]:
    """Per-rule alarms grouped into events, each group in subgroup order."""
    groups, current = [], {}
    for row in sorted(rows, key=lambda r: (r["subgroup_start"], r["id"])):
        group = current.get(row["line"])
        if row["acknowledged_at"] is None and group and _within(group[-1], row):
            group.append(row)
            continue
        groups.append([row])
        if row["acknowledged_at"] is None:
            current[row["line"]] = groups[-1]
    return groups


def _within(newest: dict, row: dict) -> bool:
    length = newest["subgroup_end"] - newest["subgroup_start"]
    return row["subgroup_start"] - newest["subgroup_start"] <= WINDOW * length


def upgrade() -> None:
    connection = op.get_bind()
    old = _table("alarms", "id", *RULE_COLUMNS, *ACK_COLUMNS)
    groups = _groups([dict(r) for r in connection.execute(sa.select(old)).mappings()])
    with op.batch_alter_table("alarms") as batch:
        batch.drop_constraint("uq_alarms_episode", type_="unique")
        for name in PER_RULE:
            batch.drop_column(name)
    rules = op.create_table(
        "alarm_rules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer(), sa.ForeignKey("alarms.id"), nullable=False),
        *_rule_columns(),
        sa.UniqueConstraint("line", "chart", "camera", "rule", "subgroup_start", name="uq_alarm_rules_episode"),
    )
    op.create_index("ix_alarm_rules_alarm_id", "alarm_rules", ["alarm_id"])
    joined = [row["id"] for group in groups for row in group[1:]]
    if joined:
        alarms = _table("alarms", "id")
        connection.execute(alarms.delete().where(alarms.c.id.in_(joined)))
    op.bulk_insert(rules, [{**{k: r[k] for k in RULE_COLUMNS}, "alarm_id": g[0]["id"]} for g in groups for r in g])


def downgrade() -> None:
    """Back to one alarm per rule: each rule of an alarm becomes an alarm with its acknowledgement."""
    connection = op.get_bind()
    grouped = _table("alarms", "id", *ACK_COLUMNS)
    per_rule = _table("alarm_rules", "id", "alarm_id", *RULE_COLUMNS)
    query = (
        sa.select(*(per_rule.c[k] for k in RULE_COLUMNS), *(grouped.c[k] for k in ACK_COLUMNS))
        .join_from(per_rule, grouped, per_rule.c.alarm_id == grouped.c.id)
        .order_by(per_rule.c.id)
    )
    rows = [dict(r) for r in connection.execute(query).mappings()]
    op.drop_table("alarm_rules")
    op.drop_table("alarms")
    alarms = op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        *_rule_columns(),
        sa.Column("acknowledged_at", sa.DateTime()),
        sa.Column("acknowledged_by", sa.String(128)),
        sa.Column("note", sa.Text()),
        sa.UniqueConstraint("line", "chart", "camera", "rule", "subgroup_start", name="uq_alarms_episode"),
    )
    op.create_index("ix_alarms_line_acknowledged_at", "alarms", ["line", "acknowledged_at"])
    op.bulk_insert(alarms, rows)
