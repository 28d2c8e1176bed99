"""From production back to annotators: images the service kept, sent for review with their predictions.

The service keeps the image of every defect and of every score near the threshold (records'
`image_path`). Each is uploaded once (the content key in its name stops a second send), its
task gets the inspection's tags in `data` and the service's verdict as a prediction, so the
annotator confirms or corrects it and the next training set grows where the model is least sure.
Label Studio's labelling stream shows only predictions of the project's one model version, so the
newest record's model becomes the project's (as `predict` does; the last one set wins); tasks
predicted by another version keep their prediction, seen in the Data Manager, and are counted.
A run cut short (Label Studio gone midway) is finished by running it again: images already
there are not sent twice, and their tasks get whichever of tags and prediction they lack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from annotation.labelstudio.client import ONCE, Connection, LabelStudioGone
from annotation.labelstudio.label_config import ChoicesControl, confidence
from annotation.labelstudio.projects import list_tasks, project_control, upload, uploaded_tasks
from annotation.verdicts import CLASSES

TAGS = ("line", "station", "camera", "part_id")


@dataclass(frozen=True)
class ReviewSummary:
    kept: int
    sent: int
    already_there: int
    missing_files: list[str]
    finished: int  # tasks already there that an interrupted run had left without tags or prediction
    shown: str  # the model version annotators see in Label All Tasks ("" when nothing was kept)
    other_versions: int  # tasks whose prediction is another model version's: not shown in Label All Tasks


def send_review(
    conn: Connection, project_id: int, records: list, label_map: dict[str, str] | None = None, log=print
) -> ReviewSummary:
    """Send the kept images of `records` (InspectionRecord) that the project does not hold yet."""
    control = project_control(conn, project_id)
    choices = {name: control.choice_for(name, label_map) for name in CLASSES}
    kept = [r for r in records if r.image_path and r.verdict and r.image_sha256]
    missing = [r.image_path for r in kept if not Path(r.image_path).is_file()]
    wanted = {}
    for record in kept:
        if Path(record.image_path).is_file():
            wanted.setdefault(record.image_sha256[:16], record)
    held = uploaded_tasks(list_tasks(conn, project_id))
    todo = {key: Path(r.image_path) for key, r in wanted.items() if key not in held}
    complete = finished = 0
    try:
        upload(conn, project_id, todo, log)
        tasks = uploaded_tasks(list_tasks(conn, project_id)) if todo else held
        for key, record in wanted.items():
            if _complete(conn, tasks[key], record, control, choices) and key in held:
                finished += 1
            complete += 1
        shown = _show(conn, project_id, list(wanted.values()))
    except LabelStudioGone as exc:
        raise LabelStudioGone(
            f"{exc}; {complete} of {len(wanted)} tasks tagged and predicted. Send again once Label Studio answers: "
            "no image is sent twice, and tasks left half done are completed"
        ) from None
    others = sum(_version(r) != shown for r in wanted.values())
    return ReviewSummary(len(kept), len(todo), len(kept) - len(todo) - len(missing), missing, finished, shown, others)


def _version(record) -> str:
    return f"{record.model_name}-{record.model_version}"


def _show(conn: Connection, project_id: int, sent: list) -> str:
    """Make the newest record's model version the project's, so Label All Tasks shows its predictions."""
    if not sent:
        return ""
    version = _version(max(sent, key=lambda r: r.created_at))
    conn.call(
        conn.sdk.projects.update, "make the service's predictions the ones annotators see", project_id,
        model_version=version, show_collab_predictions=True,
    )  # fmt: skip
    return version


def _complete(conn: Connection, task: dict, record, control: ChoicesControl, choices: dict[str, str]) -> bool:
    """Give the task the record's tags and the service's prediction, whichever it lacks; whether it lacked any."""
    version = _version(record)
    tagged = task["data"].get("inspection_id") is not None
    predicted = version in (task.get("predictions_model_versions") or [])
    if not tagged:
        tags = {name: getattr(record, name) for name in TAGS if getattr(record, name)}
        data = {**task["data"], "inspection_id": record.id, "inspected_at": record.created_at.isoformat(), **tags}
        conn.call(conn.sdk.tasks.update, f"tag task {task['id']}", str(task["id"]), data=data)
    if not predicted:
        conn.call(
            conn.sdk.predictions.create, f"write the prediction for task {task['id']}", task=task["id"],
            result=control.result(choices[record.verdict]), score=confidence(record.score, record.threshold),
            model_version=version, request_options=ONCE,
        )  # fmt: skip
    return not (tagged and predicted)
