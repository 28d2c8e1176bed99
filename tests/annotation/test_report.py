"""The `dataset check` summary, rendered as the terminal would show it."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from annotation.manifest import Manifest, ManifestItem, Problem, Severity
from annotation.report import render_report
from annotation.verdicts import CLASSES


def rendered(manifest: Manifest, examples: int = 3) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render_report(manifest, examples=examples))
    return console.file.getvalue()


def item(n: int, label: str, source: str) -> ManifestItem:
    return ManifestItem(Path(f"/img/{n}.png"), label, n, f"{n}.png", f"{n:064x}", source)


def problem(kind: str, severity: Severity, n: int) -> Problem:
    return Problem(kind, severity, f"{kind} message for task {n}", n, f"ref-{n}.png")


def test_counts_problem_groups_examples_and_verdict() -> None:
    manifest = Manifest(
        items=[item(1, "defect", "scratch"), item(2, "defect", "scratch"), item(3, "defect", "dent")],
        problems=[problem("unlabelled", Severity.WARNING, n) for n in range(10, 12)]
        + [problem("missing_image", Severity.ERROR, n) for n in range(20, 25)],
        classes=list(CLASSES),
        sources=["export.json"],
    )
    text = rendered(manifest, examples=2)
    lines = [line.strip() for line in text.splitlines()]

    assert "export.json" in text
    assert any(line.startswith("│ normal") and "│      0 │" in line for line in lines)
    assert any(
        line.startswith("│ defect") and "│      3 │" in line and "scratch (2), dent (1)" in line for line in lines
    )
    assert text.index("missing_image (error): 5") < text.index("unlabelled (warning): 2")  # errors first
    assert "missing_image message for task 21" in text and "ref-21.png" in text
    assert "missing_image message for task 22" not in text  # only the first examples
    assert "... and 3 more" in text
    assert "unlabelled message for task 11" in text and "more" not in text.split("unlabelled (warning)")[1]
    assert lines[-1] == "5 errors, 2 warnings"


def test_clean_manifest_and_markup_in_messages() -> None:
    manifest = Manifest(items=[item(1, "normal", "[ok]")], classes=list(CLASSES), sources=["a.csv"])
    text = rendered(manifest)
    assert "[ok] (1)" in text  # not swallowed as rich markup
    assert text.rstrip().splitlines()[-1] == "0 errors, 0 warnings"

    manifest.problems.append(Problem("unknown_label", Severity.ERROR, "label [bold]x[/bold] maps to no class", 1))
    text = rendered(manifest)
    assert "label [bold]x[/bold] maps to no class" in text
    assert "│ 1    │ -" in text  # no reference written
