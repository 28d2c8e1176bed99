"""Pre-annotations: the model's verdict on unlabelled tasks, so annotators confirm instead of label.

Each prediction selects the project's own choice for the verdict and carries `model_version`
and a `score`: how sure the verdict is, 0 at the threshold and 1 at a probability of 0 or 1.
Label Studio 1.23 (read from its source: projects/functions/next_task.py, tasks/models.py) goes
by the project's one `model_version`: the labelling stream (Label All Tasks) shows a task's
predictions of that version only, and uncertainty sampling serves first the task whose
prediction of that version has the lowest score (at random when no task holds one). So the
project's model version becomes this one, and `order_by_uncertainty` switches the project to
uncertainty sampling: annotators see the images nearest the threshold first. That takes the
place of a live model `connect` set (its title is the model version then); the last one set wins.
A run cut short (Label Studio gone midway) is finished by running it again: tasks that hold a
prediction of this model version are skipped, so none gets two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from annotation.labelstudio.cache import fetch, is_served
from annotation.labelstudio.client import ONCE, Connection, LabelStudioError, LabelStudioGone
from annotation.labelstudio.label_config import ChoicesControl, confidence
from annotation.labelstudio.projects import get_project, list_tasks, project_control
from annotation.verdicts import CLASSES, verdict

UNCERTAINTY = "Uncertainty sampling"
# The model, as this module sees it: image files in, (defect score, None) or (None, why not) out, in order.
ScoreFiles = Callable[[list[Path]], Iterable[tuple[float | None, str | None]]]


@dataclass(frozen=True)
class PredictSummary:
    tasks: int
    predicted: int
    skipped_labelled: int
    skipped_predicted: int
    unreadable: list[tuple[int, str]]  # (task id, why)
    shown: bool  # the project's model version is now this one: its predictions are what annotators see
    replaced: str  # the project's model version before, when another: a live model's title or another model's


def push_predictions(
    conn: Connection,
    project_id: int,
    score_files: ScoreFiles,
    threshold: float,
    model_version: str,
    cache: Path,
    label_map: dict[str, str] | None = None,
    from_name: str | None = None,
    overwrite: bool = False,
    order_by_uncertainty: bool = False,
) -> PredictSummary:
    """Predict every unlabelled task that has no prediction from this model version yet."""
    control = project_control(conn, project_id, from_name)
    choices = {name: control.choice_for(name, label_map) for name in CLASSES}
    version = model_version
    tasks = list_tasks(conn, project_id)
    labelled = [t for t in tasks if t.get("total_annotations")]
    done = [
        t for t in tasks if not t.get("total_annotations") and version in (t.get("predictions_model_versions") or [])
    ]
    todo = [t for t in tasks if t not in labelled and (overwrite or t not in done)]
    made = 0
    try:
        local = {t["id"]: _local_image(conn, t, control, cache / str(project_id)) for t in todo}
        unreadable = [(task_id, why) for task_id, why in local.items() if isinstance(why, str)]
        readable = [t for t in todo if isinstance(local[t["id"]], Path)]
        for task, (score, why) in zip(readable, score_files([local[t["id"]] for t in readable]), strict=True):
            if score is None:
                unreadable.append((task["id"], why or "unreadable"))
                continue
            conn.call(
                conn.sdk.predictions.create, f"write the prediction for task {task['id']}", task=task["id"],
                result=control.result(choices[verdict(score, threshold)]), score=confidence(score, threshold),
                model_version=version, request_options=ONCE,
            )  # fmt: skip
            made += 1
        shown = bool(made or done)  # Label Studio refuses a model version that no prediction carries
        before = get_project(conn, project_id).model_version or ""
        settings = {"model_version": version, "show_collab_predictions": True} if shown else {}
        if order_by_uncertainty:
            settings["sampling"] = UNCERTAINTY
        if settings:
            conn.call(conn.sdk.projects.update, "make these the predictions annotators see", project_id, **settings)
    except LabelStudioGone as exc:
        raise LabelStudioGone(
            f"{exc}; {made} of {len(todo)} predictions written before that (model version {version}). Predict "
            "again once Label Studio answers: without --overwrite, tasks this version predicted are skipped"
        ) from None
    skipped_done = 0 if overwrite else len(done)
    replaced = before if shown and before != version else ""
    return PredictSummary(len(tasks), made, len(labelled), skipped_done, unreadable, shown, replaced)


def _local_image(conn: Connection, task: dict, control: ChoicesControl, folder: Path) -> Path | str:
    """The task's image as a file here (downloaded once when Label Studio serves it), or why not."""
    reference = (task.get("data") or {}).get(control.image_key)
    if not isinstance(reference, str) or not reference:
        return f"the task has no {control.image_key!r} field"
    if not is_served(reference, conn.url):
        return Path(reference)
    try:
        return fetch(conn, reference, folder)
    except LabelStudioGone:
        raise
    except LabelStudioError as exc:
        return str(exc)
