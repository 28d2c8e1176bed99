"""Live predictions: a project connected to the service's ML backend, which Label Studio asks while annotators label.

Label Studio 1.23 (read from its source: ml/models.py, tasks/models.py, ml/api.py) asks a backend
for a task only when the task holds no prediction of the model version the backend's /setup
returns; the service answers with a version of its own (`<model>-<version>-live`), so tasks that
`lineinspect labelstudio predict` already predicted are asked too. Label Studio then asks:
- in the labelling stream (Label All Tasks, `GET /api/projects/ID/next`), for each task it opens,
  when the project's model version names the backend (its "live model"): `connect` sets that.
  Uncertainty sampling then serves tasks at random (no prediction carries that version), until
  `predict` makes its batch version the project's again: the last one set wins;
- on Data Manager > Actions > Retrieve Predictions, for the selected tasks;
- on `POST /api/ml/BACKEND/interactive-annotating` with `{"task": ID}`, for one task, answered
  without storing it: only for a backend marked interactive, which `connect` does.
"""

from __future__ import annotations

from annotation.labelstudio.client import Connection
from annotation.labelstudio.projects import project_control
from annotation.verdicts import CLASSES

TITLE = "lineinspect"  # the backend's title, which the project's model version names to use it live


def connect_service(
    conn: Connection, project_id: int, service_url: str, key: str | None, label_map: dict[str, str] | None = None
):
    """Connect the project to the service's ML backend as its live model, replacing an earlier connection."""
    control = project_control(conn, project_id)  # a config we cannot answer is reported here, in words
    for verdict in CLASSES:
        control.choice_for(verdict, label_map)
    auth = {"auth_method": "BASIC_AUTH", "basic_auth_user": "labelstudio", "basic_auth_pass": key} if key else {}
    earlier = conn.call(conn.sdk.ml.list, "list the project's ML backends", project=project_id)
    backend = conn.call(
        conn.sdk.ml.create, "connect the ML backend", project=project_id, url=service_url.rstrip("/") + "/labelstudio",
        title=TITLE, is_interactive=True, **auth,
    )  # fmt: skip
    for old in earlier:
        if old.title == TITLE:
            conn.call(conn.sdk.ml.delete, "remove the earlier connection", old.id)
    conn.call(
        conn.sdk.projects.update, "make the service the project's live model", project_id,
        model_version=TITLE, show_collab_predictions=True,
    )  # fmt: skip
    return backend
