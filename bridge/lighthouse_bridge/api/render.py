"""Service results as HTTP bodies."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_model(result: BaseModel) -> Response:
    """A service's typed result, serialised once. Routes declare the model as response_model for the OpenAPI
    document; returning the body directly spares FastAPI a second validation of what the service already built."""
    return Response(result.model_dump_json(), media_type="application/json")
