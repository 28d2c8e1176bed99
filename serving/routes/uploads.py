"""What an inspection request carries: image bytes and tags, from a multipart form or a raw image body.

The body is read once, in memory (its size is already bounded by limits.max_body_mb), and a
multipart body is split without temporary files.
"""

from __future__ import annotations

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from serving.records.model import Tags
from serving.routes.errors import ApiError

RAW_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/tiff")
IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_KEY_LENGTH = 255
TAG_NAMES = ("line", "station", "camera", "part_id")
MAX_TAG_LENGTH = 128
ACCEPTED = f"multipart/form-data, or a raw {', '.join(RAW_TYPES)} body"
TAG_DOCS = {
    "line": "Production line",
    "station": "Station on the line",
    "camera": "Camera at the station",
    "part_id": "The part's serial or tracking id",
}
_BINARY = {"type": "string", "format": "binary"}


async def read_images(request: Request, field: str, names: tuple[str, ...]) -> tuple[list[bytes], dict[str, list[str]]]:
    """The images sent in `field` (or the raw body) and the values of `names` (form fields, or query
    parameters with a raw body)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.partition(";")[0].strip().lower()
    if media == "multipart/form-data":
        parts = parse_multipart(await request.body(), content_type)
        images = [data for name, data in parts if name == field]
        if not images:
            sent = sorted({name for name, _ in parts}) or "no fields"
            raise ApiError(
                400, "missing_image", f"no multipart field {field!r} (got {sent}): send the image in field {field!r}"
            )
        fields: dict[str, list[str]] = {}
        for name, data in parts:
            if name in names:
                fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
        return images, fields
    if media in RAW_TYPES:
        query = request.query_params
        return [await request.body()], {name: query.getlist(name) for name in names if name in query}
    got = f"Content-Type {media!r}" if media else "no Content-Type"
    raise ApiError(415, "unsupported_media_type", f"{got} is not accepted: send {ACCEPTED}")


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """(field name, bytes) for every part, in order."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_multipart", "multipart Content-Type without a boundary")
    parts: list[tuple[str, bytes]] = []
    headers: dict[bytes, bytes] = {}
    field, value, chunks = bytearray(), bytearray(), []

    def on_part_begin() -> None:
        headers.clear()
        chunks.clear()

    def on_header_end() -> None:
        headers[bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    def on_part_end() -> None:
        name = parse_options_header(headers.get(b"content-disposition", b""))[1].get(b"name", b"")
        parts.append((name.decode("utf-8", "replace"), b"".join(chunks)))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": lambda data, start, end: field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: value.extend(data[start:end]),
            "on_header_end": on_header_end,
            "on_part_data": lambda data, start, end: chunks.append(data[start:end]),
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise ApiError(400, "bad_multipart", f"malformed multipart body: {exc}") from None
    return parts


async def read_image(request: Request, names: tuple[str, ...]) -> tuple[bytes, dict[str, list[str]]]:
    """One image, as multipart field `image` or a raw body, and the values of `names`."""
    images, fields = await read_images(request, "image", names)
    if len(images) > 1:
        raise ApiError(400, "too_many_images", f"{len(images)} images: send one (POST /v1/inspect/batch takes several)")
    return images[0], fields


def _check(name: str, values: list[str], once: bool = True) -> None:
    for value in values:
        if len(value) > MAX_TAG_LENGTH or not value.isprintable():
            raise ApiError(422, "invalid_field", f"{name}: at most {MAX_TAG_LENGTH} printable characters")
    if once and len(values) > 1:
        raise ApiError(422, "invalid_field", f"{name} given {len(values)} times: give it once")


def option(request: Request, fields: dict[str, list[str]], name: str) -> str | None:
    """A setting of the request, such as `ocr=TEMPLATE`: a form field, else a query parameter; at most once."""
    values = fields.get(name) or request.query_params.getlist(name)
    _check(name, values)
    return values[0] if values else None


def idempotency_key(request: Request) -> str | None:
    """The request's `Idempotency-Key` header, if any: a request sent again with the same key is stored once."""
    values = request.headers.getlist(IDEMPOTENCY_KEY)
    if not values:
        return None
    key = values[0]
    if len(values) > 1 or not 0 < len(key) <= MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise ApiError(
            400, "invalid_idempotency_key", f"{IDEMPOTENCY_KEY}: once, 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def tags_for(fields: dict[str, list[str]], images: int) -> list[Tags]:
    """Tags for each image: line, station and camera once; part_id once per image, in order, or not at all."""
    for name in TAG_NAMES:
        _check(name, fields.get(name, []), once=name != "part_id")
    part_ids = fields.get("part_id") or [None] * images
    if len(part_ids) != images:
        raise ApiError(422, "invalid_field", f"{len(part_ids)} part_id values for {images} images: give one per image")
    shared = {name: fields[name][0] for name in ("line", "station", "camera") if fields.get(name)}
    return [Tags(part_id=part_id, **shared) for part_id in part_ids]


def upload_docs(
    field: str, many: bool = False, tags: bool = True, options: dict[str, tuple[str, str]] | None = None
) -> dict:
    """OpenAPI for a body read by hand: the image field (or a raw body), the tags, and `options`
    (name -> (description, example)), which go as form fields or query parameters."""
    image = {"type": "array", "items": _BINARY} if many else _BINARY
    tag = {"type": "string", "maxLength": MAX_TAG_LENGTH}
    form = {name: {**tag, "description": text} for name, text in TAG_DOCS.items()} if tags else {}
    parameters = []
    if many and tags:
        form["part_id"] = {"type": "array", "items": form["part_id"], "description": "One per image, in order"}
    elif tags:
        parameters = [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
             "description": f"{TAG_DOCS[name]} (with a raw image body; multipart sends it as a form field)"}
            for name in TAG_NAMES
        ]  # fmt: skip
    for name, (text, example) in (options or {}).items():
        form[name] = {"type": "string", "description": text, "example": example}
        parameters.append(
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "example": example,
             "description": f"{text} (or as a form field)"}
        )  # fmt: skip
    content = {
        "multipart/form-data": {"schema": {"type": "object", "required": [field], "properties": {field: image, **form}}}
    }
    if not many:
        content.update({media: {"schema": _BINARY} for media in RAW_TYPES})
    return {"requestBody": {"required": True, "content": content}, "parameters": parameters}
