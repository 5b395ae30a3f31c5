"""Annotations on shadow files, anchored by content hashes so they follow moved lines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.problems import responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import AnnotationIn, AnnotationList, AnnotationOut, AnnotationUpdateIn, Text
from lighthouse_bridge.services import annotations as service

router = APIRouter(tags=["annotations"])


@router.post("/annotations", response_model=AnnotationOut, responses=responses(404))
async def create_annotation(body: AnnotationIn, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    return json_model(await service.create(rt, body))


@router.put("/annotations/{annotation_id}", response_model=AnnotationOut, responses=responses(404))
async def update_annotation(annotation_id: str, body: AnnotationUpdateIn, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    return json_model(await service.update(rt, annotation_id, body))


@router.delete("/annotations/{annotation_id}", responses=responses(404))
async def delete_annotation(annotation_id: str, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, Any]:
    return await service.delete(rt, annotation_id)


@router.get("/annotations", response_model=AnnotationList, responses=responses())
async def list_annotations(
    rt: RuntimeDep,
    _p: PrincipalDep,
    path: Annotated[Text | None, Query(max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> Response:
    """Annotations (of one path, or all), with line numbers re-resolved against the current content."""
    return json_model(await service.list_(rt, path, limit))
