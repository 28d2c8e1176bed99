"""`lineinspect labelstudio ...`: a local Label Studio, and the round trip between it and lineinspect.

Every command but `up`/`down` talks to the Label Studio at --url with --token; both default to
$LABEL_STUDIO_URL / $LABEL_STUDIO_API_KEY, else to the server `up` started for --data-dir.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from annotation.errors import LineInspectError
from annotation.verdicts import CLASSES
from serving.cli.options import console, open_database
from serving.times import stamp

ls_app = typer.Typer(help="Label Studio: run one, and send images, exports and predictions both ways.",
                     no_args_is_help=True)  # fmt: skip
project_app = typer.Typer(help="Label Studio projects.", no_args_is_help=True)
ls_app.add_typer(project_app, name="project")

DataDir = Annotated[
    Path,
    typer.Option(
        envvar="LINEINSPECT_LABEL_STUDIO_DATA", help="Local server's data folder (`up` writes its token there)."
    ),
]
DEFAULT_DATA = Path.home() / ".local/share/lineinspect/label-studio"
Url = Annotated[
    str | None, typer.Option(help="Label Studio's address [default: $LABEL_STUDIO_URL or the local server].")
]
Token = Annotated[
    str | None,
    typer.Option(
        help="API token [default: $LABEL_STUDIO_API_KEY or the local server's]. Prefer the variable: other users "
        "of this machine can read a command line."
    ),
]
ProjectId = Annotated[int, typer.Option("--project", help="Project id (`lineinspect labelstudio project list`).")]
Cache = Annotated[Path, typer.Option(help="Where images Label Studio serves are downloaded (kept between runs).")]
DEFAULT_CACHE = Path.home() / ".cache/lineinspect/label-studio-images"
LabelMap = Annotated[
    list[str] | None, typer.Option("--label", help="VERDICT=CHOICE when the project names a class otherwise (repeat).")
]


def _connect(url: str | None, token: str | None, data_dir: Path):
    from annotation.labelstudio.client import Connection, default_connection

    default_url, default_token = default_connection(data_dir)
    return Connection(url or default_url, token or default_token)


def _label_map(entries: list[str] | None) -> dict[str, str]:
    mapping = {}
    for entry in entries or []:
        verdict, sep, choice = entry.partition("=")
        if not sep or verdict not in CLASSES or not choice:
            raise LineInspectError(
                f"--label {entry!r}: write VERDICT=CHOICE with VERDICT normal or defect, e.g. defect=NG"
            )
        mapping[verdict] = choice
    return mapping


@ls_app.command()
def up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    data_dir: DataDir = DEFAULT_DATA,
    document_root: Annotated[
        Path | None, typer.Option(help="Folder local-files storage may serve from [default: --data-dir].")
    ] = None,
) -> None:
    """Install Label Studio (own virtual environment, once), start it on 127.0.0.1, wait until it answers."""
    from annotation.labelstudio import server

    info = server.up(data_dir, port, document_root, log=console.print)
    console.print(f"Label Studio {info.version} at {info.url} (pid {info.pid}), data in {info.data_dir}")
    console.print(f"log in as {info.username}; password and API token in {Path(info.data_dir) / server.STATE_FILE}")


@ls_app.command()
def down(data_dir: DataDir = DEFAULT_DATA) -> None:
    """Stop the Label Studio that `up` started for --data-dir."""
    from annotation.labelstudio import server

    info = server.down(data_dir)
    console.print(f"stopped Label Studio at {info.url}" if info else f"no Label Studio running for {data_dir}")


@project_app.command("create")
def project_create(
    title: Annotated[str, typer.Option(help="Project title.")],
    labels: Annotated[str, typer.Option(help="Choices, comma-separated.")] = "normal,defect",
    description: str = "",
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = DEFAULT_DATA,
) -> None:
    """Create an image-classification project; prints its id (stdout)."""
    from annotation.labelstudio.projects import create_project

    project = create_project(
        _connect(url, token, data_dir), title, tuple(x.strip() for x in labels.split(",")), description
    )
    print(project.id)
    console.print(f"created project {project.id} {title!r} with choices {labels}")


@project_app.command("list")
def project_list(url: Url = None, token: Token = None, data_dir: DataDir = DEFAULT_DATA) -> None:
    """The projects the token's user sees."""
    conn = _connect(url, token, data_dir)
    table = Table("id", "title", "tasks", "labelled")
    for project in conn.call(lambda: list(conn.sdk.projects.list()), "list projects"):
        table.add_row(
            str(project.id),
            project.title or "",
            str(project.task_number or 0),
            str(project.num_tasks_with_annotations or 0),
        )
    Console().print(table)


@ls_app.command("import")
def import_images(
    folder: Annotated[Path, typer.Argument(help="Folder of images (searched recursively).")],
    project: ProjectId,
    mode: Annotated[
        str, typer.Option(help="upload (send the files) or local (local-files storage, served in place).")
    ] = "upload",
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = DEFAULT_DATA,
) -> None:
    """Add a folder's images as tasks; images already in the project are skipped."""
    from annotation.labelstudio.projects import import_local, import_upload

    conn = _connect(url, token, data_dir)
    if mode == "upload":
        summary = import_upload(conn, project, folder, log=console.print)
    elif mode == "local":
        summary = import_local(conn, project, folder)
    else:
        raise LineInspectError(f"--mode must be upload or local, not {mode!r}")
    console.print(
        f"{summary.found} images: {summary.added} added, {summary.already_there} already in project {project}"
    )


@ls_app.command()
def pull(
    project: ProjectId,
    out: Annotated[Path, typer.Option(help="Export file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="json, json-min or csv.")] = "json",
    cache: Cache = DEFAULT_CACHE,
    from_name: Annotated[str | None, typer.Option(help="Choices control, when the config has several.")] = None,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = DEFAULT_DATA,
) -> None:
    """Export the project now, images downloaded so that `lineinspect train` can use the file directly."""
    from annotation.labelstudio.pull import EXPORT_TYPES, pull

    if fmt not in EXPORT_TYPES:
        raise LineInspectError(f"--format must be json, json-min or csv, not {fmt!r}")
    summary = pull(_connect(url, token, data_dir), project, out, fmt, cache, from_name)
    console.print(
        f"wrote {out}: {summary.rows} rows for the project's {summary.tasks} tasks, {summary.labelled} labelled; "
        f"{summary.left_out_text()}; images: {summary.downloaded} downloaded, {summary.cached} already in {cache}",
        highlight=False,
    )


@ls_app.command()
def predict(
    project: ProjectId,
    model: Annotated[Path, typer.Option(help="ONNX model written by `lineinspect export`.")],
    label: LabelMap = None,
    overwrite: Annotated[bool, typer.Option(help="Predict again tasks this model version already predicted.")] = False,
    order_by_uncertainty: Annotated[
        bool,
        typer.Option(
            help="Switch the project to uncertainty sampling: Label All Tasks serves the images nearest the "
            "threshold first (by these predictions: in place of a live model `connect` set, the last one set wins)."
        ),
    ] = False,
    cache: Cache = DEFAULT_CACHE,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = DEFAULT_DATA,
) -> None:
    """Write the model's verdicts as pre-annotations on the project's unlabelled tasks, and make them the
    predictions annotators see (the project's model version)."""
    from annotation.labelstudio.live import TITLE
    from annotation.labelstudio.predictions import push_predictions
    from vision.onnx_model import OnnxClassifier
    from vision.predict import iter_defect_scores

    classifier = OnnxClassifier(model)
    conn = _connect(url, token, data_dir)
    version = f"{classifier.meta.name}-{classifier.meta.version}"
    summary = push_predictions(
        conn, project, lambda paths: iter_defect_scores(classifier, paths), classifier.threshold, version, cache,
        _label_map(label), overwrite=overwrite, order_by_uncertainty=order_by_uncertainty,
    )  # fmt: skip
    console.print(
        f"{summary.tasks} tasks: {summary.predicted} predicted, {summary.skipped_labelled} labelled, "
        f"{summary.skipped_predicted} already predicted by this model, {len(summary.unreadable)} unreadable"
    )
    if summary.shown:
        line = f"Label All Tasks shows {version}'s predictions"
        line += ", nearest the threshold first" if order_by_uncertainty else ""
        if summary.replaced == TITLE:
            line += (
                "; the service is no longer asked live (`connect` again makes it the live model, tasks then in "
                "random order: the last one set wins)"
            )
        elif summary.replaced:
            line += f", in place of {summary.replaced}'s"
        console.print(line, highlight=False)
    for task_id, why in summary.unreadable[:10]:
        console.print(f"  task {task_id}: {why}", highlight=False)


@ls_app.command()
def connect(
    project: ProjectId,
    service_url: Annotated[
        str, typer.Option(help="The inspection service as Label Studio reaches it, e.g. http://127.0.0.1:8000.")
    ],
    service_key: Annotated[
        str | None,
        typer.Option(envvar="LINEINSPECT_API_KEY", help="An API key of the service (`lineinspect keys create`)."),
    ] = None,
    label: LabelMap = None,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = DEFAULT_DATA,
) -> None:
    """Connect the project to the service's ML backend (/labelstudio) as its live model: Label Studio asks it for
    predictions while annotators label, tasks already predicted by `predict` included.

    With --label, the service needs the same mapping in its config (labelstudio.label_map)."""
    from annotation.labelstudio.live import connect_service

    conn = _connect(url, token, data_dir)
    backend = connect_service(conn, project, service_url, service_key, _label_map(label))
    console.print(
        f"project {project} now asks {backend.url} for live predictions (ML backend {backend.id}): "
        "in Label All Tasks for each task opened, and on Data Manager > Actions > Retrieve Predictions; Label All "
        "Tasks no longer shows batch predictions nor orders by them (`predict` makes them the project's again, "
        "without live predictions: the last one set wins)"
    )


@ls_app.command("send-review")
def send_review(
    project: ProjectId,
    since: Annotated[datetime, typer.Option(help="Records from this time on (UTC unless it says otherwise).")],
    config: Annotated[Path | None, typer.Option(help="The service's settings YAML (where its database is).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a service setting (repeat).")] = None,
    label: LabelMap = None,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = DEFAULT_DATA,
) -> None:
    """Send the images the service kept (defects, scores near the threshold) since a time, with its verdicts."""
    from annotation.labelstudio.review import send_review as send
    from serving.records.database import InspectionFilter

    db = open_database(config, set_)
    moment = since if since.tzinfo else since.replace(tzinfo=UTC)
    records, page = [], 1000
    while batch := db.list_inspections(InspectionFilter(since=moment), limit=page, offset=len(records)):
        records.extend(batch)
    summary = send(_connect(url, token, data_dir), project, records, _label_map(label), log=console.print)
    finished = f" ({summary.finished} of them completed, left half done by an earlier run)" if summary.finished else ""
    console.print(
        f"{len(records)} records since {stamp(moment)} UTC, {summary.kept} with a kept image: "
        f"{summary.sent} sent, {summary.already_there} already in project {project}{finished}, "
        f"{len(summary.missing_files)} files missing"
    )
    if summary.shown:
        others = f"; {summary.other_versions} tasks hold another model's prediction, seen in the Data Manager only"
        console.print(
            f"Label All Tasks shows {summary.shown}'s predictions{others if summary.other_versions else ''}",
            highlight=False,
        )
