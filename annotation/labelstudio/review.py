"""From production back to annotators: images the service kept, sent for review with their predictions.

The service keeps the image of every defect and of every score near the threshold (records'
`image_path`). Each is uploaded once (the content key in its name stops a second send), its
task gets the inspection's tags in `data` and the service's verdict as a prediction, so the
annotator confirms or corrects it and the next training set grows where the model is least sure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from annotation.labelstudio.client import Connection
from annotation.labelstudio.label_config import confidence
from annotation.labelstudio.projects import list_tasks, project_control, upload, uploaded_tasks

TAGS = ("line", "station", "camera", "part_id")


@dataclass(frozen=True)
class ReviewSummary:
    kept: int
    sent: int
    already_there: int
    missing_files: list[str]


def send_review(
    conn: Connection, project_id: int, records: list, label_map: dict[str, str] | None = None, log=print
) -> ReviewSummary:
    """Send the kept images of `records` (InspectionRecord) that the project does not hold yet."""
    control = project_control(conn, project_id)
    choices = {verdict: control.choice_for(verdict, label_map) for verdict in ("normal", "defect")}
    kept = [r for r in records if r.image_path and r.verdict and r.image_sha256]
    missing = [r.image_path for r in kept if not Path(r.image_path).is_file()]
    held = uploaded_tasks(list_tasks(conn, project_id))
    todo = {}
    for record in kept:
        key = record.image_sha256[:16]
        if key not in held and Path(record.image_path).is_file():
            todo.setdefault(key, record)
    upload(conn, project_id, {key: Path(r.image_path) for key, r in todo.items()}, log)
    created = uploaded_tasks(list_tasks(conn, project_id))
    for key, record in todo.items():
        task = created[key]
        tags = {name: getattr(record, name) for name in TAGS if getattr(record, name)}
        data = {**task["data"], "inspection_id": record.id, "inspected_at": record.created_at.isoformat(), **tags}
        conn.call(conn.sdk.tasks.update, f"tag task {task['id']}", str(task["id"]), data=data)
        conn.call(
            conn.sdk.predictions.create, f"write the prediction for task {task['id']}", task=task["id"],
            result=control.result(choices[record.verdict]), score=confidence(record.score, record.threshold),
            model_version=f"{record.model_name}-{record.model_version}",
        )  # fmt: skip
    return ReviewSummary(len(kept), len(todo), len(kept) - len(todo) - len(missing), missing)
