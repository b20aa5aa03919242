"""``create_api(service, bearer_token=...)``: the grid-operator API on FastAPI.

Handlers validate, call the DispatchService, and return; long work runs in the dispatch runner
(callers follow progress with GET).

Every route needs the bearer token: the guard is a dependency of the application itself, so
each route added to it -- here, by an included router (``/api/v1/regions``), or later -- is
guarded without saying so (issue 13 item 6: ``/regions`` was included without it and
answered anyone). Deliberately public, and nothing else (:data:`PUBLIC_PATHS`): the OpenAPI
document ``/openapi.json`` and its Swagger page ``/docs`` (+ its OAuth2 redirect helper).
They describe the contract -- paths, schemas, the auth scheme -- and hold no fleet data,
dispatch or credential; an integrator generates a client from them before holding a token,
and the API listens on 127.0.0.1 unless configured otherwise. ReDoc is switched off (one
documentation page is enough surface).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from vpp_core.api.schemas import (
    AllocationOut,
    DispatchCreate,
    DispatchCreatedOut,
    DispatchOut,
    ErrorOut,
    FleetOut,
    FleetSessionOut,
    PlanSummaryOut,
    ReasonOut,
    RequestOut,
    mw,
)
from vpp_core.dispatch.errors import (
    DispatchConflictError,
    DispatchNotFoundError,
    DispatchNotRecordedError,
    InvalidDispatchError,
)
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.progress import DispatchProgress
from vpp_core.dispatch.render import report_csv, report_json, report_png
from vpp_core.dispatch.service import DispatchService, summarize
from vpp_core.services.errors import InvalidServiceError

__all__ = ["create_api"]

PREFIX = "/api/v1"
#: Routes served without the token (see the module docstring for why).
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or malformed bearer token"},
    403: {"model": ErrorOut, "description": "bearer token not accepted"},
    # one body shape for every validation error: schema, bad JSON, or the dispatch rules
    422: {
        "model": ErrorOut,
        "description": "invalid request: `reasons` names each field (`body.power_mw`, "
        "`query.format`; `body` alone for a body that is not JSON) and why",
    },
}


def _bearer_guard(token: str) -> Callable[..., Awaitable[None]]:
    if not token:
        raise ValueError("bearer_token must not be empty")
    scheme = HTTPBearer(auto_error=False, description="static bearer token from core.toml")
    expected = token.encode()

    async def guard(
        request: Request, creds: HTTPAuthorizationCredentials | None = Depends(scheme)
    ) -> None:
        challenge = {"WWW-Authenticate": "Bearer"}
        if "authorization" not in request.headers:
            raise HTTPException(
                401, "missing bearer token (Authorization: Bearer <token>)", challenge
            )
        if creds is None or not creds.credentials:
            raise HTTPException(401, "Authorization header must be 'Bearer <token>'", challenge)
        if not hmac.compare_digest(creds.credentials.encode(), expected):
            raise HTTPException(403, "bearer token not accepted")

    return guard


def _invalid(reasons: list[ReasonOut]) -> JSONResponse:
    body = ErrorOut(detail="invalid request", reasons=reasons)
    return JSONResponse(body.model_dump(), status_code=422)


def _field(err: Mapping[str, Any]) -> str:
    """``body.power_mw``; a body that is not JSON is ``body`` (not its byte offset)."""
    loc = [str(p) for p in err["loc"]]
    return loc[0] if err["type"] == "json_invalid" else ".".join(loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _invalid([ReasonOut(field=_field(e), reason=e["msg"]) for e in exc.errors()])


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI answers a body it cannot decode (JSON that is not UTF-8) with a bare 400:
    that is a bad body like any other, so it gets the 422 shape; the rest as FastAPI does."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        return _invalid([ReasonOut(field="body", reason=f"not JSON: {exc.__cause__}")])
    return await http_exception_handler(request, exc)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """The dispatch and frequency-service rules that need the clock or the config (start in
    the past, longer than ``[dispatch] max_duration_s``, a curve the product cannot take): the
    same body as a schema violation."""
    assert isinstance(exc, InvalidDispatchError | InvalidServiceError)
    return _invalid([ReasonOut(field=f"body.{f}", reason=r) for f, r in exc.reasons])


def _progress_out(service: DispatchService, p: DispatchProgress) -> DispatchOut:
    plan = service.initial_plan(p.dispatch_id)
    current = service.current_plan(p.dispatch_id)
    summary = summarize(plan, uncertainty_pct=service.uncertainty_pct()) if plan else None
    delivered_wh = sum(r.delivered_w * r.duration_s for r in p.intervals) / 3600.0
    return DispatchOut(
        id=p.dispatch_id,
        status=p.status.value,
        request=RequestOut.of(p.request),
        plan=PlanSummaryOut.of(summary, p.request) if summary else None,
        current_committed_mw=mw(current.committed_w) if current else None,
        allocations=[
            AllocationOut(
                station_id=k.station_id,
                evse_id=k.evse_id,
                transaction_id=k.transaction_id,
                setpoint_w=r.setpoint_w,
                dropped_at=r.dropped_at,
                drop_reason=r.drop_reason,
                lagging=r.lagging,
            )
            for k, r in p.sessions.items()
            if r.profile_sent
        ],
        live_power_mw=mw(p.live_power_w),
        live_direction="discharge" if p.live_power_w < 0 else "charge",
        delivered_energy_mwh=abs(delivered_wh) / 1e6,
        events=p.events[-50:],
    )


def create_api(
    service: DispatchService, *, bearer_token: str, routers: Sequence[APIRouter] = ()
) -> FastAPI:
    """The API app (with ``routers`` included); every route needs the bearer token."""
    app = FastAPI(
        title="V2G VPP grid-operator API",
        version="1",
        description="Dispatch a V2G fleet in MW; follow progress; fetch delivery reports.",
        dependencies=[Depends(_bearer_guard(bearer_token))],
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InvalidDispatchError, _invalid_request)
    app.add_exception_handler(InvalidServiceError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _write_routes(app, service)
    _read_routes(app, service)
    _fleet_routes(app, service)
    for router in routers:
        app.include_router(router, responses=ERRORS)
    return app


def _get(service: DispatchService, dispatch_id: str) -> DispatchProgress:
    try:
        return service.get(dispatch_id)
    except DispatchNotFoundError:
        raise HTTPException(404, f"no dispatch {dispatch_id}") from None


def _write_routes(app: FastAPI, service: DispatchService) -> None:
    @app.post(
        f"{PREFIX}/dispatches",
        status_code=201,
        response_model=DispatchCreatedOut,
        responses={
            **ERRORS,
            409: {"model": ErrorOut},
            503: {"model": ErrorOut, "description": "the dispatch journal cannot record it"},
        },
    )
    async def create_dispatch(body: DispatchCreate, response: Response) -> DispatchCreatedOut:
        """Accept a dispatch; an infeasible one is accepted for its feasible part (see plan).
        Answered once the dispatch is journaled: a 201 survives a crash of the core."""
        try:
            created = await service.create(body.to_request(service.runner.clock.now()))
        except DispatchConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        except DispatchNotRecordedError as exc:
            raise HTTPException(503, str(exc), {"Retry-After": "5"}) from None
        response.headers["Location"] = f"{PREFIX}/dispatches/{created.dispatch_id}"
        return DispatchCreatedOut(
            id=created.dispatch_id,
            status=service.get(created.dispatch_id).status.value,
            request=RequestOut.of(created.request),
            plan=PlanSummaryOut.of(created.summary, created.request),
        )

    @app.delete(
        f"{PREFIX}/dispatches/{{dispatch_id}}",
        response_model=DispatchOut,
        responses={**ERRORS, 404: {"model": ErrorOut}},
    )
    async def cancel_dispatch(dispatch_id: str) -> DispatchOut:
        """Cancel; returns once every profile sent has been cleared (or reported uncleared)."""
        _get(service, dispatch_id)
        return _progress_out(service, await service.cancel(dispatch_id))


def _read_routes(app: FastAPI, service: DispatchService) -> None:
    @app.get(f"{PREFIX}/dispatches", response_model=list[DispatchOut], responses=ERRORS)
    async def list_dispatches() -> list[DispatchOut]:
        return [_progress_out(service, p) for p in service.list()]

    @app.get(
        f"{PREFIX}/dispatches/{{dispatch_id}}",
        response_model=DispatchOut,
        responses={**ERRORS, 404: {"model": ErrorOut}},
    )
    async def get_dispatch(dispatch_id: str) -> DispatchOut:
        """Status, plan, per-session setpoints and live fleet power."""
        return _progress_out(service, _get(service, dispatch_id))

    @app.get(
        f"{PREFIX}/dispatches/{{dispatch_id}}/report",
        responses={
            **ERRORS,
            404: {"model": ErrorOut},
            200: {"content": {"application/json": {}, "text/csv": {}, "image/png": {}}},
        },
    )
    async def get_report(
        dispatch_id: str,
        format: Literal["json", "csv", "png"] = "json",
        speed: Annotated[float, Query(ge=1, le=3600, allow_inf_nan=False)] = 1.0,
    ) -> Response:
        """Target vs delivered power per interval, energy, per-session contributions, tracking
        error and deviation attribution (provisional while the dispatch runs). ``speed``:
        the run's time compression (a demo), stated on the PNG."""
        _get(service, dispatch_id)
        report = service.report(dispatch_id)
        if format == "csv":
            return Response(report_csv(report), media_type="text/csv")
        if format == "png":
            return Response(report_png(report, speed=speed), media_type="image/png")
        return Response(report_json(report), media_type="application/json")


def _fleet_routes(app: FastAPI, service: DispatchService) -> None:
    @app.get(f"{PREFIX}/fleet", response_model=FleetOut, responses=ERRORS)
    async def get_fleet() -> FleetOut:
        """Sessions with SoC, available discharge/charge power (0 when not connected), departure."""
        sessions, busy = service.fleet()
        out = [
            FleetSessionOut(
                station_id=s.station_id,
                evse_id=s.evse_id,
                transaction_id=s.transaction_id,
                site=s.site,
                region=s.region,
                connected=s.connected,
                soc_pct=s.soc_pct,
                available_discharge_w=s.max_discharge_w if s.connected else 0.0,
                available_charge_w=s.max_charge_w if s.connected else 0.0,
                present_power_w=s.present_power_w,
                departure=s.departure,
                dispatch_id=busy.get(SessionKey(s.station_id, s.evse_id, s.transaction_id)),
                needs_reported_at=s.needs_at,
            )
            for s in sessions
        ]
        return FleetOut(
            sessions=out,
            available_discharge_mw=sum(s.available_discharge_w for s in out) / 1e6,
            available_charge_mw=sum(s.available_charge_w for s in out) / 1e6,
        )
