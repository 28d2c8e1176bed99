"""OCR over HTTP: labels, displays and dials read by the real service with real Tesseract, and the label
read with the verdict stored in the inspection record."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.serving.conftest import metric
from vision.ocr import DialCalibration, load_gauge
from vision.ocr.image import encode_jpeg, encode_png
from vision.ocr.render_dial import render_dial
from vision.ocr.render_display import family_reading, random_reading, render_photo
from vision.ocr.render_label import render_label

LABEL = render_label(1)
LABEL_JPEG = encode_jpeg(LABEL.image, 95)
BLANK = encode_png(np.full((240, 320, 3), 225, np.uint8))


def image_form(data: bytes, **fields) -> dict:
    return {"files": {"image": ("part.img", data, "application/octet-stream")}, "data": fields}


def test_a_label_s_fields_words_and_confidences_are_read(app_service):
    answer = app_service["client"].post(
        "/v1/ocr/label", content=LABEL_JPEG, headers={"content-type": "image/jpeg"}, params={"template": "default"}
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert {name: field["value"] for name, field in result["fields"].items()} == LABEL.fields
    assert result["ok"] is True and result["problems"] == [] and result["reason"] is None
    assert result["status"] == "ok" and result["unsure"] == []
    assert all(0.5 <= field["confidence"] <= 1 for field in result["fields"].values() if field["value"])
    assert result["image"] == "prepared"  # the prepared page read every field: the photo was not read again
    assert result["template"] == "default" and LABEL.fields["serial"] in result["text"]
    serial = next(w for w in result["words"] if w["text"] == LABEL.fields["serial"])
    assert 0.5 < serial["confidence"] <= 1 and serial["box"]["width"] > 0 and serial["box"]["height"] > 0


def test_a_digital_display_is_read_with_per_digit_confidences(app_service):
    photo, _ = render_photo("73.40", seed=8, led=False)
    answer = app_service["client"].post("/v1/ocr/gauge", **image_form(encode_jpeg(photo), gauge="fuel-pump-lcd"))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["kind"], result["gauge"], result["text"], result["value"]) == (
        "digital",
        "fuel-pump-lcd",
        "73.40",
        73.4,
    )
    assert [d["char"] for d in result["digits"]] == list("73.40") and result["unit"] == "L"
    assert all(0.5 < d["confidence"] <= 1 for d in result["digits"]) and result["reason"] is None
    assert result["status"] == "ok"


def test_a_thermo_hygrometer_s_top_row_is_read_through_its_config_and_both_rows_as_one_line_are_a_counted_guess(
    app_service,
):
    client = app_service["client"]
    text = random_reading(np.random.default_rng(10_000 + 50004))
    photo, _ = render_photo(text, seed=50004, family="two-row")
    answer = client.post("/v1/ocr/gauge", **image_form(encode_jpeg(photo), gauge="thermo-hygrometer")).json()
    assert (answer["status"], answer["value"], answer["unit"]) == ("ok", float(text), "°C"), answer
    before = client.get("/metrics").text
    other, _ = render_photo("1.0", seed=50015, family="two-row")  # read as one line: "8", surely
    guess = client.post("/v1/ocr/gauge", **image_form(encode_jpeg(other), gauge="panel-meter")).json()
    assert guess["status"] == "uncertain" and guess["reason"].startswith("the display shows 2 rows of digits"), guess
    counted = {"kind": "digital", "result": "uncertain"}
    assert metric(client.get("/metrics").text, "lineinspect_ocr_results_total", **counted) == (
        metric(before, "lineinspect_ocr_results_total", **counted) + 1
    )


def test_a_cycle_timer_is_read_through_its_config_as_a_time_in_seconds(app_service):
    text = family_reading(np.random.default_rng(10_000 + 50001), "timer")
    photo, _ = render_photo(text, seed=50001, family="timer")
    answer = app_service["client"].post("/v1/ocr/gauge", **image_form(encode_jpeg(photo), gauge="cycle-timer")).json()
    minutes, seconds = map(int, text.split(":"))
    assert (answer["text"], answer["value"], answer["unit"], answer["status"]) == (
        text, float(60 * minutes + seconds), "s", "ok"
    ), answer  # fmt: skip


def test_an_analog_dial_is_read_through_the_gauge_s_calibration(app_service):
    calibration = load_gauge("pressure-0-10bar")
    dial = render_dial(6.4, calibration, seed=3)
    answer = app_service["client"].post(
        "/v1/ocr/gauge", content=encode_jpeg(dial.image), headers={"content-type": "image/jpeg"},
        params={"gauge": "pressure-0-10bar"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["kind"], result["unit"], result["reason"], result["status"]) == ("analog", "bar", None, "ok")
    assert abs(result["value"] - 6.4) < 0.02 * calibration.span and abs(result["angle"] - dial.angle) < 3
    assert 0 < result["confidence"] <= 1


def test_a_meter_s_small_dial_is_read_through_its_config_and_a_second_pointer_makes_a_counted_guess(app_service):
    client = app_service["client"]
    subdial = load_gauge("meter-subdial")
    dial = render_dial(6.2, subdial, seed=51, family="meter-subdial")
    answer = client.post("/v1/ocr/gauge", **image_form(encode_jpeg(dial.image), gauge="meter-subdial"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ok" and abs(answer.json()["value"] - 6.2) < 0.2
    before = client.get("/metrics").text
    two = render_dial(3.8, load_gauge("pressure-0-10bar"), seed=46, family="second-pointer")  # a dark needle, a red one
    guess = client.post("/v1/ocr/gauge", **image_form(encode_jpeg(two.image), gauge="pressure-0-10bar")).json()
    assert guess["status"] == "uncertain" and guess["reason"].startswith("two pointers"), guess
    counted = {"kind": "analog", "result": "uncertain"}
    after = client.get("/metrics").text
    assert metric(after, "lineinspect_ocr_results_total", **counted) == (
        metric(before, "lineinspect_ocr_results_total", **counted) + 1
    )


def test_a_values_only_gauge_finds_the_dial_s_scale_and_says_where_and_that_its_value_is_uncertain(app_service):
    client = app_service["client"]
    before = client.get("/metrics").text
    dial = render_dial(5.0, DialCalibration(min_angle=-150, max_angle=150, min_value=0, max_value=16), seed=20)
    answer = client.post("/v1/ocr/gauge", **image_form(encode_jpeg(dial.image), gauge="pressure-0-16bar"))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["kind"], result["gauge"], result["unit"]) == ("analog", "pressure-0-16bar", "bar")
    # the scale's ends are the reader's own finding, not a calibration: a best guess, said so and counted
    assert result["status"] == "uncertain" and "scale's ends were taken from the dial" in result["reason"]
    assert abs(result["value"] - 5.0) < 0.02 * 16
    after = client.get("/metrics").text
    counted = {"kind": "analog", "result": "uncertain"}
    assert (
        metric(after, "lineinspect_ocr_results_total", **counted)
        == metric(before, "lineinspect_ocr_results_total", **counted) + 1
    )
    assert any(note.startswith("scale found from the tick marks: -15") for note in result["notes"]), result["notes"]
    assert abs(result["scale_ends"][0] + 150) < 4 and abs(result["scale_ends"][1] - 150) < 4


def test_a_values_only_gauge_on_a_dial_without_tick_marks_says_it_assumed_the_270_degree_sweep(app_service):
    face = np.full((400, 400, 3), 90, np.uint8)
    cv2.circle(face, (200, 200), 170, (240, 240, 240), -1)
    cv2.line(face, (200, 200), (320, 200), (20, 20, 20), 7)  # needle at 3 o'clock: 90 deg
    answer = app_service["client"].post(
        "/v1/ocr/gauge", content=encode_png(face), headers={"content-type": "image/png"},
        params={"gauge": "pressure-0-16bar"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] == "uncertain" and abs(result["value"] - 16 * 225 / 270) < 0.3
    assert any("not found on the dial" in note and "assumed -135 to 135 deg" in note for note in result["notes"])
    assert result["scale_ends"] is None


def test_the_openapi_schema_says_a_gauge_may_give_only_its_values(app_service):
    gauge = app_service["client"].get("/openapi.json").json()["paths"]["/v1/ocr/gauge"]["post"]
    form = gauge["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["gauge"]
    query = next(p for p in gauge["parameters"] if p["name"] == "gauge")
    for described in (form["description"], query["description"]):
        assert "only min_value and max_value" in described and "found on the dial" in described


def test_inspect_with_ocr_answers_and_records_the_label_s_fields(app_service):
    client = app_service["client"]
    answer = client.post("/v1/inspect", **image_form(LABEL_JPEG, ocr="default", part_id="ocr-part-1"))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["verdict"] in ("normal", "defect")
    assert result["ocr"]["fields"] == LABEL.fields and result["ocr"]["problems"] == []
    assert result["ocr"]["template"] == "default" and result["ocr"]["reason"] is None and result["ocr"]["ms"] > 0
    record = client.get(f"/v1/inspections/{result['id']}").json()
    assert (record["ocr_template"], record["ocr_fields"], record["ocr_missing"]) == ("default", LABEL.fields, False)
    assert record["ocr_problems"] is None and record["score"] == result["score"]
    listed = client.get("/v1/inspections", params={"part_id": "ocr-part-1", "ocr_missing": "false"}).json()["items"]
    assert [r["id"] for r in listed] == [result["id"]]


def test_inspect_with_ocr_records_missing_required_fields(app_service):
    client = app_service["client"]
    answer = client.post("/v1/inspect", content=BLANK, headers={"content-type": "image/png"}, params={"ocr": "default"})
    assert answer.status_code == 200, answer.text
    ocr = answer.json()["ocr"]
    assert (
        ocr["reason"] == "no text found" and ocr["fields"]["serial"] is None and "serial: not found" in ocr["problems"]
    )
    record = client.get(f"/v1/inspections/{answer.json()['id']}").json()
    assert record["ocr_missing"] is True and record["ocr_problems"] == "no text found"


def test_a_batch_with_ocr_reads_every_image_s_label(app_service):
    images = [("images", ("label.jpg", LABEL_JPEG)), ("images", ("blank.png", BLANK))]
    answer = app_service["client"].post("/v1/inspect/batch", files=images, data={"ocr": "default"})
    assert answer.status_code == 200, answer.text
    label, blank = (result["ocr"] for result in answer.json()["results"])
    assert label["fields"] == LABEL.fields and blank["reason"] == "no text found"


def test_inspect_without_ocr_reads_no_label(app_service):
    answer = app_service["client"].post("/v1/inspect", content=BLANK, headers={"content-type": "image/png"})
    assert answer.status_code == 200 and answer.json()["ocr"] is None
    assert app_service["client"].get(f"/v1/inspections/{answer.json()['id']}").json()["ocr_template"] is None


@pytest.mark.parametrize(
    ("path", "request_args", "code"),
    [("/v1/inspect", {"params": {"ocr": "nope"}}, "unknown_template"),
     ("/v1/inspect", image_form(BLANK, ocr="nope", part_id="unknown-template"), "unknown_template"),
     ("/v1/ocr/label", {"params": {"template": "nope"}}, "unknown_template"),
     ("/v1/ocr/gauge", {"params": {"gauge": "nope"}}, "unknown_gauge"),
     ("/v1/ocr/gauge", {}, "missing_gauge")],
)  # fmt: skip
def test_an_unknown_template_or_gauge_is_refused_before_any_inference(app_service, path, request_args, code):
    client = app_service["client"]
    before = client.get("/metrics").text
    request_args = request_args if "files" in request_args else {**request_args, "content": BLANK,
                                                                  "headers": {"content-type": "image/png"}}  # fmt: skip
    answer = client.post(path, **request_args)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and "known: " in error["message"]
    assert "id" not in error  # refused before inference: no record
    after = client.get("/metrics").text
    assert metric(after, "lineinspect_stage_seconds_count", stage="infer") == metric(
        before, "lineinspect_stage_seconds_count", stage="infer"
    )
    assert client.get("/v1/inspections", params={"part_id": "unknown-template"}).json()["items"] == []


@pytest.mark.parametrize(
    ("path", "params", "kind", "reason", "result"),
    [("/v1/ocr/label", {}, "label", "no text found", "no_text"),
     ("/v1/ocr/gauge", {"gauge": "panel-meter"}, "digital", "no seven-segment digits found", "no_digits"),
     ("/v1/ocr/gauge", {"gauge": "pressure-0-10bar"}, "analog", "no needle found", "no_needle")],
)  # fmt: skip
def test_a_blank_image_gives_an_empty_value_and_a_reason_counted_in_metrics(
    app_service, path, params, kind, reason, result
):
    client = app_service["client"]
    before = client.get("/metrics").text
    answer = client.post(path, content=BLANK, headers={"content-type": "image/png"}, params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["reason"] == reason and body.get("value") is None and not body.get("text")
    assert body["status"] == "unread"
    after = client.get("/metrics").text
    for name, labels in (("lineinspect_ocr_results_total", {"result": result}), ("lineinspect_ocr_seconds_count",
                                                                                  {"stage": "read"})):  # fmt: skip
        assert metric(after, name, kind=kind, **labels) == metric(before, name, kind=kind, **labels) + 1, name


@pytest.mark.parametrize("path", ["/v1/ocr/label", "/v1/ocr/gauge"])
@pytest.mark.parametrize(
    ("data", "status", "code"),
    [(LABEL_JPEG[: len(LABEL_JPEG) // 3], 422, "corrupt_image"), (b"not an image at all", 422, "not_an_image"),
     (b"", 400, "empty_image")],
)  # fmt: skip
def test_a_corrupt_or_empty_image_is_refused_like_inspect_refuses_it(app_service, path, data, status, code):
    params = {"gauge": "pressure-0-10bar"} if path.endswith("gauge") else {}
    answer = app_service["client"].post(path, content=data, headers={"content-type": "image/jpeg"}, params=params)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    inspected = app_service["client"].post("/v1/inspect", content=data, headers={"content-type": "image/jpeg"})
    assert (inspected.status_code, inspected.json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize("path", ["/v1/ocr/label", "/v1/ocr/gauge"])
def test_ocr_routes_need_a_key(app_service, path):
    with app_service["server"].client() as anonymous:
        answer = anonymous.post(
            path, content=BLANK, headers={"content-type": "image/png"}, params={"gauge": "panel-meter"}
        )
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "missing_api_key"


def test_the_openapi_schema_documents_the_ocr_routes_with_examples(app_service):
    schema = app_service["client"].get("/openapi.json").json()
    label = schema["paths"]["/v1/ocr/label"]["post"]
    assert "template" in label["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"DisplayAnswer", "DialAnswer", "LabelAnswer", "OcrStep"} <= set(schema["components"]["schemas"])
    assert schema["components"]["schemas"]["LabelAnswer"]["examples"]
    assert any(p["name"] == "ocr" for p in schema["paths"]["/v1/inspect"]["post"]["parameters"])
