"""``/api/v1/services``: frequency services, for the grid-operator API to include (its bearer
guard covers every included router). Handlers validate, call :class:`FrequencyServices`,
return; the service's life runs in that component."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response

from vpp_core.api.schemas import ErrorOut
from vpp_core.services.errors import InvalidServiceError, ServiceNotFoundError
from vpp_core.services.manager import FrequencyServices, HeldService
from vpp_core.services.schemas import ServiceCreate, ServiceOut

__all__ = ["services_router"]

PREFIX = "/api/v1"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}


def _get(services: FrequencyServices, service_id: str) -> HeldService:
    try:
        return services.get(service_id)
    except ServiceNotFoundError:
        raise HTTPException(404, f"no frequency service {service_id}") from None


def services_router(services: FrequencyServices) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["frequency services"])

    @router.post(
        "/services",
        status_code=201,
        response_model=ServiceOut,
        responses={422: {"model": ErrorOut}},
    )
    async def create_service(body: ServiceCreate, response: Response) -> ServiceOut:
        """Hold frequency-response capacity: each session gets an OCPP 2.1 LocalFrequency
        profile for its share; a fleet that cannot cover the capacity holds what it can
        (``plan.feasible`` false, ``plan.message`` says why)."""
        try:
            request = body.to_request(services.clock.now())
        except InvalidServiceError as exc:
            reasons = [{"field": f"body.{f}", "reason": r} for f, r in exc.reasons]
            raise HTTPException(422, {"detail": "invalid request", "reasons": reasons}) from None
        held = services.create(request)
        response.headers["Location"] = f"{PREFIX}/services/{held.service_id}"
        return ServiceOut.of(held)

    @router.get("/services", response_model=list[ServiceOut])
    async def list_services() -> list[ServiceOut]:
        return [ServiceOut.of(h) for h in services.services()]

    @router.get("/services/{service_id}", response_model=ServiceOut, responses=_NOT_FOUND)
    async def get_service(service_id: str) -> ServiceOut:
        """Status, plan, per-session shares and the stations' answers."""
        return ServiceOut.of(_get(services, service_id))

    @router.delete("/services/{service_id}", response_model=ServiceOut, responses=_NOT_FOUND)
    async def end_service(service_id: str) -> ServiceOut:
        """End early; returns once every profile has been cleared (or reported uncleared)."""
        _get(services, service_id)
        return ServiceOut.of(await services.end(service_id))

    return router
