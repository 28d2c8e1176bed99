"""The Label Studio round trip against a real Label Studio 1.23 started by the test run.

Projects, imports (upload and local files, twice), annotations made through the API, exports
pulled in each format and trained from, predictions pushed and read back, and the error cases
a user meets, Label Studio going away in the middle of a command among them (a proxy in front
of it dies at a chosen request). The ML-backend protocol is exercised by Label Studio itself
(test_ml_backend.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest

from annotation.exports import ImportOptions, load_export
from annotation.labelstudio.client import Connection, LabelStudioError, LabelStudioGone
from annotation.labelstudio.label_config import LabelConfigError
from annotation.labelstudio.predictions import UNCERTAINTY, push_predictions
from annotation.labelstudio.projects import create_project, import_local, import_upload, list_tasks, upload
from annotation.labelstudio.pull import pull
from annotation.labelstudio.review import send_review
from annotation.labelstudio.server import LOG_FILE
from annotation.manifest import sha256_file
from serving.records.model import InspectionRecord
from tests.serving.conftest import cli
from tests.serving.dying_proxy import DyingProxy
from vision.onnx_model import OnnxClassifier
from vision.predict import iter_defect_scores

PER_CLASS = 12


@pytest.fixture(scope="module")
def conn(label_studio) -> Connection:
    return Connection(label_studio["url"], label_studio["token"])


@pytest.fixture(scope="module")
def image_folder(casting_images, tmp_path_factory) -> Path:
    """12 defect and 12 normal casting images, in class folders."""
    folder = tmp_path_factory.mktemp("ls-images")
    for label, paths in casting_images.items():
        (folder / label).mkdir()
        for path in paths[:PER_CLASS]:
            shutil.copy(path, folder / label / path.name)
    return folder


def _truth(name: str) -> str:
    """Casting file names say the class: cast_def_0_12.jpeg, cast_ok_0_34.jpeg."""
    return "defect" if "_def_" in name else "normal"


def _annotate(conn: Connection, project_id: int, tasks: list[dict], key: str = "image") -> None:
    for task in tasks:
        choice = _truth(task["data"][key])
        conn.sdk.annotations.create(
            id=task["id"], result=[{"from_name": "verdict", "to_name": "image", "type": "choices",
                                    "value": {"choices": [choice]}}],
        )  # fmt: skip


@pytest.fixture(scope="module")
def uploaded(conn, image_folder) -> dict:
    """A project with the 24 images uploaded, 20 of them annotated through the API (4 left for predictions)."""
    project = create_project(conn, "casting upload")
    first = import_upload(conn, project.id, image_folder, log=lambda _: None)
    tasks = sorted(list_tasks(conn, project.id), key=lambda t: t["id"])
    _annotate(conn, project.id, tasks[:20])
    return {"project": project.id, "first": first, "tasks": tasks}


def test_upload_import_adds_every_image_once(conn, uploaded, image_folder):
    assert (uploaded["first"].found, uploaded["first"].added) == (2 * PER_CLASS, 2 * PER_CLASS)
    again = import_upload(conn, uploaded["project"], image_folder, log=lambda _: None)
    assert (again.added, again.already_there) == (0, 2 * PER_CLASS)
    tasks = list_tasks(conn, uploaded["project"])
    assert len(tasks) == 2 * PER_CLASS
    assert all(t["data"]["image"].startswith(f"/data/upload/{uploaded['project']}/") for t in tasks)


def test_local_files_import_is_served_in_place_and_not_duplicated(conn, label_studio, image_folder, tmp_path):
    folder = label_studio["docroot"] / "line-3"
    shutil.copytree(image_folder / "defect", folder)
    project = create_project(conn, "casting local files")
    first = import_local(conn, project.id, folder, label_studio["docroot"])
    assert (first.found, first.added) == (PER_CLASS, PER_CLASS)
    assert import_local(conn, project.id, folder, label_studio["docroot"]).added == 0
    tasks = list_tasks(conn, project.id)
    assert all(t["data"]["image"].startswith("/data/local-files/?d=") for t in tasks)
    summary = pull(conn, project.id, tmp_path / "local.json", "json", tmp_path / "cache")
    assert summary.downloaded == PER_CLASS
    cached = {Path(t["data"]["image"]).read_bytes() for t in json.loads((tmp_path / "local.json").read_text())}
    assert cached == {p.read_bytes() for p in folder.iterdir()}


def test_local_files_outside_the_document_root_are_refused(conn, label_studio, image_folder):
    project = create_project(conn, "outside docroot")
    with pytest.raises(LabelStudioError, match="document root"):
        import_local(conn, project.id, image_folder, label_studio["docroot"])


@pytest.mark.parametrize("where", ["outside", "the-root-itself"])
def test_a_local_import_label_studio_cannot_serve_is_said_in_our_words(label_studio, image_folder, where):
    """Label Studio's own sentence ("... by security reasons") becomes one line that says what to do."""
    folder = image_folder if where == "outside" else label_studio["docroot"]
    if where == "the-root-itself":
        shutil.copytree(image_folder / "normal", folder / "root-itself", dirs_exist_ok=True)
    project = cli("labelstudio", "project", "create", "--title", f"local {where}", *_ls(label_studio)).stdout.strip()
    result = cli("labelstudio", "import", folder, "--project", project, "--mode", "local", *_ls(label_studio),
                 check=False)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    said = {
        "outside": f"{image_folder} is not under Label Studio's document root {label_studio['docroot']}, so it "
        "cannot serve it: move the folder under that root, or restart Label Studio with a root that holds it",
        "the-root-itself": f"{folder} is Label Studio's document root itself: put the images in a folder under it",
    }[where]
    assert line.startswith("error: cannot add local-files storage: ") and said in line, line
    assert "security reasons" not in line and "LOCAL_FILES_DOCUMENT_ROOT" not in line


def _ls(label_studio) -> list[str]:
    return ["--url", label_studio["url"], "--token", label_studio["token"]]


@pytest.fixture(scope="module")
def four_kinds(conn, image_folder) -> int:
    """A project with one task of each kind: labelled, skipped, unlabelled, draft-only (in task id order)."""
    project = create_project(conn, "four kinds").id
    paths = sorted(image_folder.rglob("*.jpeg"))[:4]
    upload(conn, project, {f"{i:016x}": path for i, path in enumerate(paths)}, log=lambda _: None)
    labelled, skipped, _, draft_only = sorted(list_tasks(conn, project), key=lambda t: t["id"])
    result = [{"from_name": "verdict", "to_name": "image", "type": "choices", "value": {"choices": ["normal"]}}]
    conn.sdk.annotations.create(id=labelled["id"], result=result)
    conn.sdk.annotations.create(id=skipped["id"], result=[], was_cancelled=True)
    draft = httpx.post(f"{conn.url}/api/tasks/{draft_only['id']}/drafts", json={"result": result},
                       headers=conn.sdk._client_wrapper.get_headers())  # fmt: skip
    assert draft.status_code == 201, draft.text
    return project


@pytest.mark.parametrize(
    ("fmt", "rows", "skipped_absent"),
    [("json", 4, 0), ("json-min", 3, 1), ("csv", 3, 1)],  # Label Studio's JSON-MIN and CSV drop skipped tasks
)
def test_every_pull_says_what_it_left_out(conn, label_studio, four_kinds, fmt, rows, skipped_absent, tmp_path):
    out = tmp_path / f"export.{fmt}"
    summary = pull(conn, four_kinds, out, fmt, tmp_path / "cache")
    assert (summary.tasks, summary.rows, summary.labelled) == (4, rows, 1)
    assert summary.left_out == {"skipped": 1, "unlabelled": 1, "draft_only": 1}
    assert summary.not_in_file == {"skipped": skipped_absent, "unlabelled": 0, "draft_only": 0}
    result = cli("labelstudio", "pull", "--project", four_kinds, "--out", out, "--format", fmt,
                 "--cache", tmp_path / "cache", *_ls(label_studio))  # fmt: skip
    absent = f" ({skipped_absent} not in the file)" if skipped_absent else ""
    line = " ".join(result.stderr.split())
    assert (
        f"{rows} rows for the project's 4 tasks, 1 labelled; left out: 1 skipped{absent}, 1 unlabelled, "
        "1 draft-only; images:" in line
    ), line
    assert len(load_export(out, ImportOptions()).items) == 1


@pytest.mark.parametrize("fmt", ["json", "json-min", "csv"])
def test_pull_resolves_images_for_training(conn, uploaded, image_folder, fmt, tmp_path):
    out = tmp_path / f"export.{'csv' if fmt == 'csv' else 'json'}"
    summary = pull(conn, uploaded["project"], out, fmt, tmp_path / "cache")
    assert (summary.tasks, summary.labelled, summary.left_out["unlabelled"]) == (2 * PER_CLASS, 20, 4)
    assert summary.downloaded == 2 * PER_CLASS
    manifest = load_export(out, ImportOptions())
    assert len(manifest.items) == 20
    originals = {p.read_bytes(): _truth(p.name) for p in image_folder.rglob("*.jpeg")}
    for item in manifest.items:
        assert originals[Path(item.path).read_bytes()] == item.label  # the right bytes under the right label
    again = pull(conn, uploaded["project"], out, fmt, tmp_path / "cache")
    assert (again.downloaded, again.cached) == (0, 2 * PER_CLASS)


def test_train_from_a_pulled_export_and_push_predictions(conn, uploaded, tmp_path, label_studio):
    export = tmp_path / "export.json"
    cache = tmp_path / "cache"
    env_args = ["--url", label_studio["url"], "--token", label_studio["token"]]
    cli("labelstudio", "pull", "--project", uploaded["project"], "--out", export, "--cache", cache, *env_args)
    cli("train", export, "--out", tmp_path / "run",
        "--set", "model.architecture=compact_cnn", "--set", "input.height=64", "--set", "input.width=64",
        "--set", "train.epochs=1", "--set", "train.workers=0", "--set", "model.pretrained=none")  # fmt: skip
    model = tmp_path / "model.onnx"
    cli("export", tmp_path / "run", "--out", model, "--force")  # one epoch: quality is not the point

    classifier = OnnxClassifier(model)
    summary = _push(conn, uploaded["project"], model, cache, order_by_uncertainty=True)
    assert (summary.tasks, summary.predicted, summary.skipped_labelled, summary.unreadable) == (24, 4, 20, [])
    version = f"{classifier.meta.name}-{classifier.meta.version}"
    unlabelled = [t for t in list_tasks(conn, uploaded["project"]) if not t["total_annotations"]]
    for task in unlabelled:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == version
        assert 0.0 <= prediction["score"] <= 1.0
        (result,) = prediction["result"]
        assert (result["from_name"], result["to_name"], result["type"]) == ("verdict", "image", "choices")
        assert result["value"]["choices"][0] in ("normal", "defect")
    settings = conn.sdk.projects.get(uploaded["project"])
    assert (settings.sampling, settings.model_version) == (UNCERTAINTY, version)
    again = cli(
        "labelstudio", "predict", "--project", uploaded["project"], "--model", model, "--cache", cache, *env_args
    )
    said = " ".join(again.stderr.split())
    assert "0 predicted, 20 labelled, 4 already predicted by this model" in said
    assert said.endswith(f"Label All Tasks shows {version}'s predictions"), said


def _push(conn, project_id, model: Path, cache: Path, **options):
    classifier = OnnxClassifier(model)
    version = f"{classifier.meta.name}-{classifier.meta.version}"
    scores = lambda paths: iter_defect_scores(classifier, paths)  # noqa: E731
    return push_predictions(conn, project_id, scores, classifier.threshold, version, cache, **options)


def test_label_all_tasks_serves_the_task_nearest_the_threshold_first(conn, image_folder, tmp_path):
    """After predictions pushed with `order_by_uncertainty`, Label All Tasks (`GET /api/projects/ID/next`, what the
    annotator's button asks) serves the tasks by their prediction's score, lowest first, and shows that prediction;
    an earlier model's predictions on the same tasks neither order nor show."""
    project = _project_with(conn, image_folder, tmp_path, 5)
    earlier = [0.65, 0.99, 0.52, 0.95, 0.2]  # scores 0.3, 0.98, 0.04, 0.9, 0.6: the opposite order to ours
    ours = [0.9, 0.45, 0.02, 0.6, 0.3]  # scores 0.8, 0.1, 0.96, 0.2, 0.4
    push_predictions(conn, project, lambda _: [(s, None) for s in earlier], 0.5, "line-model-2", tmp_path / "cache")
    summary = push_predictions(conn, project, lambda _: [(s, None) for s in ours], 0.5, "line-model-3",
                               tmp_path / "cache", order_by_uncertainty=True)  # fmt: skip
    assert (summary.shown, summary.replaced) == (True, "line-model-2")
    scores = {t["id"]: p["score"] for t in list_tasks(conn, project) for p in t["predictions"]
              if p["model_version"] == "line-model-3"}  # fmt: skip
    served = []
    for _ in scores:
        task = httpx.get(f"{conn.url}/api/projects/{project}/next", headers=conn.sdk._client_wrapper.get_headers(),
                         timeout=60).json()  # fmt: skip
        assert [p["model_version"] for p in task["predictions"]] == ["line-model-3"]
        served.append(task["id"])
        _annotate(conn, project, [task])  # submitted: the stream moves on
    assert [round(scores[i], 2) for i in served] == [0.1, 0.2, 0.4, 0.8, 0.96]


def test_project_with_other_choice_names_needs_a_label_map(conn, uploaded, tmp_path, models):
    project = create_project(conn, "OK/NG line", labels=("OK", "NG"))
    with pytest.raises(LabelConfigError, match="no choice 'normal'"):
        _push(conn, project.id, models["model"], tmp_path)


def test_config_without_choices_is_reported(conn, tmp_path, models):
    config = '<View><Image name="img" value="$image"/><TextArea name="note" toName="img"/></View>'
    project = conn.sdk.projects.create(title="no choices", label_config=config)
    with pytest.raises(LabelConfigError, match="no <Choices> control"):
        _push(conn, project.id, models["model"], tmp_path)
    with pytest.raises(LabelConfigError, match="no <Choices> control"):
        pull(conn, project.id, tmp_path / "x.json", "json", tmp_path)


def test_image_the_server_cannot_serve_fails_the_pull_without_writing(conn, tmp_path):
    project = create_project(conn, "missing file")
    conn.sdk.projects.import_tasks(project.id, request=[{"image": "/data/local-files/?d=gone/part-17.jpeg"}])
    out = tmp_path / "export.json"
    with pytest.raises(LabelStudioError, match=r"cannot serve image .*part-17.jpeg \(HTTP 404\).*LOCAL_FILES"):
        pull(conn, project.id, out, "json", tmp_path / "cache")
    assert list(tmp_path.iterdir()) == []  # no export, no half-written file, no cache entry


def test_project_not_found(conn, tmp_path):
    with pytest.raises(LabelStudioError, match="project 987654 not found .* project list"):
        pull(conn, 987654, tmp_path / "x.json", "json", tmp_path)


def test_server_down(label_studio):
    with pytest.raises(LabelStudioError, match=r"nothing answers at http://127.0.0.1:9\. .*labelstudio up"):
        Connection("http://127.0.0.1:9", label_studio["token"])


def test_wrong_url(label_studio):
    with pytest.raises(LabelStudioError, match="answered 404. Is this the address of Label Studio"):
        Connection(label_studio["url"] + "/projects", label_studio["token"])


def test_bad_legacy_token(label_studio):
    with pytest.raises(LabelStudioError, match="refused the token. It is a legacy token"):
        Connection(label_studio["url"], "0123456789abcdef0123456789abcdef01234567")


def test_bad_personal_access_token(label_studio):
    forged = jwt.encode(
        {"token_type": "refresh", "exp": int(time.time()) + 3600, "user_id": 1},
        "a-signing-key-that-label-studio-does-not-know",
    )
    with pytest.raises(LabelStudioError, match="refused the token. It is a personal access token"):
        Connection(label_studio["url"], forged)


def test_cli_errors_are_one_line(label_studio, tmp_path):
    result = cli("labelstudio", "pull", "--project", "1", "--out", tmp_path / "x.json",
                 "--url", "http://127.0.0.1:9", "--token", "abc123abc123", check=False)  # fmt: skip
    assert result.returncode == 2
    assert "nothing answers at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_up_again_returns_the_running_server(label_studio):
    from annotation.labelstudio import server as ls_server

    port = int(label_studio["url"].rsplit(":", 1)[1])
    again = ls_server.up(label_studio["data_dir"], port, label_studio["docroot"])
    assert (again.pid, again.token) == (label_studio["info"].pid, label_studio["token"])
    assert ls_server.healthy(again.url)


def test_up_keeps_the_password_and_token_off_command_lines_and_logs(label_studio):
    info = label_studio["info"]
    group = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if _group_of(pid) == info.pid]
    assert info.pid in group
    for pid in group:  # Label Studio and whatever it started: any local user can read these
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert info.password.encode() not in cmdline and info.token.encode() not in cmdline
    log = (label_studio["data_dir"] / LOG_FILE).read_text(errors="replace")
    assert info.password not in log and info.token not in log
    environ = Path(f"/proc/{info.pid}/environ")
    assert environ.stat().st_mode & 0o077 == 0  # only its own user reads the environment
    assert f"LABEL_STUDIO_PASSWORD={info.password}".encode() in environ.read_bytes().split(b"\0")
    with httpx.Client(base_url=info.url) as browser:  # the admin's password is the one passed that way
        browser.get("/user/login/")
        form = {"csrfmiddlewaretoken": browser.cookies["csrftoken"], "email": info.username}
        assert browser.post("/user/login/", data={**form, "password": "not-it"}).status_code == 200  # form again
        assert browser.post("/user/login/", data={**form, "password": info.password}).status_code == 302


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.parametrize(
    ("marker", "after", "cut"),
    [(b"/export?", 0, 2000), (b"GET /data/upload/", 4, 3000)],  # both cut in the body
    ids=["during-the-export", "during-the-image-downloads"],
)
def test_pull_cut_short_writes_nothing_and_says_what_is_cached(
    conn, uploaded, image_folder, label_studio, tmp_path, marker, after, cut
):
    out, cache = tmp_path / "export.json", tmp_path / "cache"
    out.write_bytes(b'[{"previous": "export"}]')
    with DyingProxy(label_studio["url"], marker, after, cut) as proxy:
        result = cli("labelstudio", "pull", "--project", uploaded["project"], "--out", out, "--cache", cache,
                     "--url", proxy.url, "--token", label_studio["token"], check=False)  # fmt: skip
    assert proxy.struck and result.returncode == 2
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"error: Label Studio stopped answering at {proxy.url} "), line
    assert f"nothing written to {out} (the previous file is unchanged)" in line
    assert out.read_bytes() == b'[{"previous": "export"}]'
    files = [p for p in cache.rglob("*") if p.is_file()]
    originals = {p.read_bytes() for p in image_folder.rglob("*.jpeg")}
    assert all(p.read_bytes() in originals for p in files)  # each one whole
    assert not [p for p in files if p.name.startswith(".")]  # no temporary file left
    assert len(files) < 2 * PER_CLASS
    assert (f"{len(files)} of {2 * PER_CLASS} new images downloaded whole" if after else "no image downloaded") in line
    again = pull(conn, uploaded["project"], out, "json", cache)  # Label Studio is back
    assert (again.tasks, again.downloaded, again.cached) == (2 * PER_CLASS, 2 * PER_CLASS - len(files), len(files))


def _project_with(conn, image_folder, tmp_path, count: int) -> int:
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted(image_folder.rglob("*.jpeg"))[:count]:
        shutil.copy(path, folder / path.name)
    project = create_project(conn, "cut short")
    import_upload(conn, project.id, folder, log=lambda _: None)
    return project.id


@pytest.mark.parametrize("cut", [None, 0], ids=["request-lost", "answer-lost"])
def test_predictions_cut_short_say_how_many_and_a_rerun_adds_no_duplicates(
    conn, label_studio, image_folder, tmp_path, cut
):
    project = _project_with(conn, image_folder, tmp_path, 6)
    scores = lambda paths: [(0.9, None) for _ in paths]  # noqa: E731
    with DyingProxy(label_studio["url"], b"POST /api/predictions/", after=2, cut=cut) as proxy:
        cut_short = Connection(proxy.url, label_studio["token"])
        gone = rf"stopped answering at {re.escape(proxy.url)} .*; 2 of 6 predictions written"
        with pytest.raises(LabelStudioGone, match=gone) as lost:
            push_predictions(cut_short, project, scores, 0.5, "line-model-3", tmp_path / "cache")
    assert "RemoteProtocolError" in str(lost.value)  # the SDK did not send it again (to a port now closed)
    written = 2 if cut is None else 3  # the third reached Label Studio when only its answer was lost
    assert sum(len(t["predictions"]) for t in list_tasks(conn, project)) == written
    again = push_predictions(conn, project, scores, 0.5, "line-model-3", tmp_path / "cache")
    assert (again.predicted, again.skipped_predicted) == (6 - written, written)
    assert [len(t["predictions"]) for t in list_tasks(conn, project)] == [1] * 6


def _kept(record_id: str, path: Path) -> InspectionRecord:
    """A defect record whose image the service kept."""
    return InspectionRecord(
        id=record_id, created_at=datetime.now(UTC), line="line-2", camera="cam-1", image_sha256=sha256_file(path),
        image_path=str(path), model_name="line-model", model_version="3", threshold=0.5, score=0.8, verdict="defect",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("marker", "after", "cut", "complete"),
    [(b"/import HTTP/1.1", 0, 0, 0), (b"POST /api/predictions/", 1, None, 1)],
    ids=["upload-answer-lost", "second-prediction-lost"],
)
def test_review_cut_short_is_completed_by_a_rerun_without_duplicates(
    conn, label_studio, casting_images, marker, after, cut, complete
):
    records = [_kept(f"inspection-{i}", path) for i, path in enumerate(casting_images["defect"][20:23])]
    project = create_project(conn, "review cut short").id
    with DyingProxy(label_studio["url"], marker, after, cut) as proxy:
        cut_short = Connection(proxy.url, label_studio["token"])
        with pytest.raises(LabelStudioGone, match=rf"stopped answering at .*; {complete} of 3 tasks tagged and pred"):
            send_review(cut_short, project, records, log=lambda _: None)
    again = send_review(conn, project, records, log=lambda _: None)
    assert (again.sent, again.already_there, again.finished) == (0, 3, 3 - complete)
    tasks = list_tasks(conn, project)
    assert sorted(t["data"]["inspection_id"] for t in tasks) == [r.id for r in records]
    assert all(t["data"]["line"] == "line-2" and len(t["predictions"]) == 1 for t in tasks)
