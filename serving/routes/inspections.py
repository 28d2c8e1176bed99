"""GET /v1/inspections: the records, filtered and paginated, newest first."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from serving.records.database import InspectionFilter
from serving.records.model import InspectionRecord
from serving.records.tables import naive_utc
from serving.routes.deps import client_name, service
from serving.routes.errors import ApiError
from serving.routes.schemas import ErrorBody, InspectionPage
from serving.service import FLUSH_SECONDS

router = APIRouter(tags=["inspections"], dependencies=[Depends(client_name)])


async def _read(request: Request, query, *args):
    """Run a query once the records answered so far are written, so a client reads its own inspections."""
    svc = service(request)
    await asyncio.to_thread(svc.writer.flush, FLUSH_SECONDS)
    return await asyncio.to_thread(query, *args)


MAX_OFFSET = 10**12  # beyond any real table; larger integers overflow the database's


@router.get("/v1/inspections", response_model=InspectionPage, responses={503: {"model": ErrorBody}})
async def list_inspections(
    request: Request,
    line: str | None = None,
    station: str | None = None,
    camera: str | None = None,
    part_id: str | None = None,
    verdict: Literal["normal", "defect", "error"] | None = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive; UTC when no offset is given")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    ocr_missing: Annotated[
        bool | None, Query(description="true: labels read (ocr=) without every required field; false: with all")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> InspectionPage:
    """Inspection records, newest first; `verdict=error` lists refused images."""
    for name, moment in (("since", since), ("until", until)):
        try:
            if moment is not None:
                naive_utc(moment)
        except OverflowError:
            raise ApiError(422, "invalid_field", f"{name}: {moment.isoformat()} is out of range in UTC") from None
    where = InspectionFilter(line, station, camera, part_id, verdict, since, until, ocr_missing)
    items = await _read(request, service(request).db.list_inspections, where, limit + 1, offset)
    more = len(items) > limit
    return InspectionPage(items=items[:limit], next_offset=offset + limit if more else None)


@router.get("/v1/inspections/{inspection_id}", response_model=InspectionRecord, responses={404: {"model": ErrorBody}})
async def get_inspection(request: Request, inspection_id: str) -> InspectionRecord:
    record = await _read(request, service(request).db.get_inspection, inspection_id)
    if record is None:
        raise ApiError(404, "not_found", f"no inspection {inspection_id!r}")
    return record
