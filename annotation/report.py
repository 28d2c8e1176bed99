"""A human summary of a Manifest, printed by `lineinspect dataset check`.

An export of thousands of tasks can yield thousands of problems; the summary groups them
by kind with counts and a few examples, so the engineer sees what to fix first. Every
cell is a `rich.text.Text`, so brackets in paths or labels are never read as markup.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Group
from rich.table import Table
from rich.text import Text

from annotation.manifest import Manifest, Problem, Severity


def render_report(manifest: Manifest, examples: int = 3) -> Group:
    """Counts per class, then problems by kind (errors first) with `examples` each, then the verdict."""
    parts = [Text(f"Dataset: {', '.join(manifest.sources) or '(no source)'}", style="bold"), _class_table(manifest)]
    parts += [_problem_table(group, examples) for group in _grouped(manifest.problems)]
    parts.append(verdict(manifest))
    return Group(*parts)


def verdict(manifest: Manifest) -> Text:
    """The one-line outcome, "N errors, M warnings"; any error fails `dataset check`."""
    errors = len(manifest.errors)
    warnings = len(manifest.problems) - errors
    style = "bold red" if errors else "bold yellow" if warnings else "bold green"
    return Text(f"{errors} errors, {warnings} warnings", style=style)


def _class_table(manifest: Manifest) -> Table:
    """Images per class, with the Label Studio labels behind each, to check the label mapping at a glance."""
    table = Table(title=Text("Images per class"), title_justify="left")
    table.add_column("Class")
    table.add_column("Images", justify="right")
    table.add_column("From Label Studio labels")
    sources = Counter((item.label, item.source_label) for item in manifest.items)
    counts = Counter(item.label for item in manifest.items)
    for name in manifest.classes + sorted(set(counts) - set(manifest.classes)):
        labels = ", ".join(f"{src} ({n})" for (cls, src), n in sources.most_common() if cls == name)
        table.add_row(Text(name), Text(str(counts.get(name, 0))), Text(labels))
    table.add_row(Text("total", style="bold"), Text(str(len(manifest.items)), style="bold"), Text(""))
    return table


def _grouped(problems: list[Problem]) -> list[list[Problem]]:
    """Problems by (kind, severity): errors first, then the most frequent."""
    groups: dict[tuple[str, Severity], list[Problem]] = {}
    for problem in problems:
        groups.setdefault((problem.kind, problem.severity), []).append(problem)
    return sorted(groups.values(), key=lambda g: (g[0].severity is not Severity.ERROR, -len(g), g[0].kind))


def _problem_table(group: list[Problem], examples: int) -> Table:
    first = group[0]
    style = "red" if first.severity is Severity.ERROR else "yellow"
    title = Text(f"{first.kind} ({first.severity.value}): {len(group)}", style=f"bold {style}")
    more = len(group) - examples
    caption = Text(f"... and {more} more", style="dim") if more > 0 else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("Task", no_wrap=True)
    table.add_column("Reference", overflow="fold")
    table.add_column("Message", overflow="fold")
    for problem in group[:examples]:
        task = "-" if problem.task_id is None else str(problem.task_id)
        table.add_row(Text(task), Text(problem.reference or "-"), Text(problem.message))
    return table
