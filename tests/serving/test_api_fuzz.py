"""Fuzz every operation of the service's OpenAPI schema (schemathesis strategies run by hypothesis):
whatever a client sends, the answer is never a 5xx, an error always has the documented JSON shape,
and the service stays ready."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.serving.conftest import metric

EXAMPLES = 30  # per operation; derandomized: the same cases every run (explore other seeds by hand)


def test_no_request_makes_the_service_fail(server_factory, models):
    """A service of its own: the fuzzer may reload another model from the model folder."""
    server = server_factory({"model_dirs": [str(models["folder"])], "limits": {"max_body_mb": 1.0}})
    key = server.keys("create", "fuzzer").stdout.strip()
    server.start()
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def call(case):
            response = case.call(headers=headers, timeout=60)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"] and error["message"]

        call()
    with server.client(key) as client:
        assert client.get("/readyz").status_code == 200
        text = client.get("/metrics").text
    assert metric(text, "lineinspect_http_requests_total", route="/v1/inspect", method="POST", status="500") == 0
    server.stop()
