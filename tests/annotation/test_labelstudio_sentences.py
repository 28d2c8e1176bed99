"""Label Studio's own error sentences, as its 1.23.2 source words them, said in ours: one line that says what to do.

The cases a test run's Label Studio cannot produce (it runs on this machine, with local files served): a folder that
exists here but not where Label Studio runs, and a Label Studio started without local-files serving. The other
sentences are checked against the real server in tests/serving/test_labelstudio.py and test_ml_backend.py."""

from __future__ import annotations

import pytest

from annotation.labelstudio.client import _translated

# copied from label_studio/io_storages/localfiles/models.py and views.py (Label Studio 1.23.2)
MISSING = 'Absolute local path "/srv/line3/images" does not exist'
DISABLED_STORAGE = (
    "Serving local files from the host filesystem can be a security risk, so LOCAL_FILES_SERVING_ENABLED is disabled "
    'by default. To enable Local Files storage, set the LOCAL_FILES_SERVING_ENABLED environment variable to "true" '
    "and restart Label Studio. See https://labelstud.io/guide/storage.html#Local-storage for details."
)
DISABLED_SERVING = (
    "Serving local files can be dangerous, so it's disabled by default. You can enable it with "
    "LOCAL_FILES_SERVING_ENABLED environment variable, please check docs: "
    "https://labelstud.io/guide/storage.html#Local-storage"
)
UNRESOLVED = (
    "Can't connect to ML backend http://line-pc-7:8000/labelstudio, health check failed. Make sure it is up and your "
    "firewall is properly configured. Additional info: HTTPConnectionPool(host='line-pc-7', port=8000): Max retries "
    'exceeded with url: /labelstudio/health (Caused by NameResolutionError("<urllib3.connection.HTTPConnection object'
    " at 0x7f>: Failed to resolve 'line-pc-7' ([Errno -2] Name or service not known)\"))"
)


@pytest.mark.parametrize(
    ("sentence", "said"),
    [
        (MISSING, "/srv/line3/images does not exist on Label Studio's machine: local-files storage reads folders "
                  "where Label Studio runs; import with --mode upload"),
        (DISABLED_STORAGE, "this Label Studio does not serve local files: restart it with "
                           "LOCAL_FILES_SERVING_ENABLED=true (`lineinspect labelstudio up` sets it)"),
        (DISABLED_SERVING, "this Label Studio does not serve local files"),
        ("Can't resolve hostname line-pc-7", "Label Studio cannot resolve the host name line-pc-7 on its machine"),
        (UNRESOLVED, "Label Studio cannot reach the ML backend at http://line-pc-7:8000/labelstudio (its host name "
                     "does not resolve on Label Studio's machine)"),
    ],
)  # fmt: skip
def test_label_studio_s_sentence_is_said_in_one_line_that_says_what_to_do(sentence, said):
    line = _translated(sentence)
    assert line is not None and said in line and "\n" not in line
    assert "security" not in line and "NameResolutionError" not in line


def test_a_sentence_we_do_not_know_is_left_to_the_generic_answer():
    assert _translated("Something else went wrong") is None
