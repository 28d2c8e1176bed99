"""API keys: every route but /healthz and /readyz needs one; the `keys` CLI creates, lists and revokes them, in
SQLite or PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from serving.records.database import Database
from serving.records.tables import api_keys
from tests.conftest import jpeg_bytes
from tests.serving.conftest import wait_for

RAW = {"content-type": "image/jpeg"}


@pytest.fixture(scope="module")
def keyed(app_factory, backend):
    """A service (in this process) with keys on, its database on the backend, and one key."""
    server = app_factory({"database_url": backend.database()})
    key = server.keys("create", "camera-1").stdout.strip()
    server.start()
    with server.client() as anonymous:
        yield {"server": server, "key": key, "anonymous": anonymous}
    server.stop()


@pytest.fixture
def anonymous(app_service):
    """A client of the shared service that sends no key."""
    with app_service["server"].client() as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/inspect"), ("POST", "/v1/inspect/batch"), ("GET", "/v1/inspections"), ("GET", "/v1/models"),
     ("POST", "/v1/models/reload"), ("GET", "/metrics"), ("GET", "/v1/inspections/abc")],
)  # fmt: skip
def test_routes_need_a_key(anonymous, method, path):
    answer = anonymous.request(method, path, content=jpeg_bytes(64, 64), headers=RAW)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "missing_api_key"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_health_routes_are_open(anonymous):
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["records"] == "database"


def test_wrong_key_is_refused(anonymous):
    answer = anonymous.get("/v1/models", headers={"Authorization": "Bearer li_not-a-real-key"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"


def test_key_is_accepted_as_bearer_or_x_api_key(app_service, anonymous):
    key = app_service["key"]
    assert anonymous.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert anonymous.get("/v1/models", headers={"X-API-Key": key}).status_code == 200


def test_a_malformed_basic_auth_header_is_refused_with_a_reason(anonymous):
    for credentials in ("not-base64!", "bm8tY29sb24="):  # the second is base64 of "no-colon"
        answer = anonymous.get("/v1/models", headers={"Authorization": f"Basic {credentials}"})
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "invalid_api_key" and "user:password" in answer.text


def test_the_schema_documents_the_key_on_every_operation_but_the_probes(anonymous):
    schema = anonymous.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader", "HTTPBasic"}
    assert schema["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}, {"HTTPBasic": []}]
    open_operations = {
        path for path, operations in schema["paths"].items() for op in operations.values() if op.get("security") == []
    }
    assert open_operations == {"/healthz", "/readyz"}


def test_keys_cli_creates_lists_and_revokes_and_the_service_follows(keyed):
    server, anonymous = keyed["server"], keyed["anonymous"]
    key = server.keys("create", "inspector-anna").stdout.strip()
    assert key.startswith("li_") and len(key) > 40
    answer = wait_for(
        lambda: (a := anonymous.post("/v1/inspect", content=jpeg_bytes(64, 64),
                                     headers={**RAW, "X-API-Key": key})).status_code == 200 and a,
        what="the new key to be accepted",
    )  # fmt: skip
    record = anonymous.get(f"/v1/inspections/{answer.json()['id']}", headers={"X-API-Key": key}).json()
    assert record["client"] == "inspector-anna"

    listing = server.keys("list").stdout
    assert "inspector-anna" in listing and key[:7] in listing and key not in listing
    duplicate = server.keys("create", "inspector-anna", check=False)
    assert duplicate.returncode == 2 and "active key named 'inspector-anna'" in duplicate.stderr

    server.keys("revoke", "inspector-anna")
    wait_for(
        lambda: anonymous.get("/v1/models", headers={"X-API-Key": key}).status_code == 401,
        what="the revoked key to be refused",
    )
    assert anonymous.get("/v1/models", headers={"X-API-Key": keyed["key"]}).status_code == 200
    assert server.keys("revoke", "inspector-anna", check=False).returncode == 2  # nothing active left to revoke


def test_keys_are_stored_only_as_hashes(keyed):
    db = Database(keyed["server"].database_url)
    with db.engine.connect() as connection:
        stored = connection.execute(sa.select(api_keys)).all()
    db.close()
    assert stored and not any(keyed["key"] in map(str, row) for row in stored)
