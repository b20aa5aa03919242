"""``@on`` / ``@after`` handler marks and the routing table an endpoint class builds from them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Route", "after", "collect_routes", "on"]

F = TypeVar("F", bound=Callable[..., Any])


def on(action: str) -> Callable[[F], F]:
    """Mark a method of an endpoint subclass as the handler of incoming CALL/SEND ``action``.

    The handler gets the payload as snake_case keyword arguments (nested objects as snake
    dicts), plus ``call_unique_id`` if it declares that parameter, and returns the
    ``call_result.<Action>`` dataclass (ignored for a SEND). Without ``**kwargs`` it gets
    only the parameters it declares.
    """

    def mark(func: F) -> F:
        func._ocpp_on = action  # type: ignore[attr-defined]
        return func

    return mark


def after(action: str) -> Callable[[F], F]:
    """Mark a method to run after the answer to ``action`` was sent (same kwargs as ``on``)."""

    def mark(func: F) -> F:
        func._ocpp_after = action  # type: ignore[attr-defined]
        return func

    return mark


@dataclass(frozen=True)
class Route:
    func: Callable[..., Any]
    is_async: bool
    wants_unique_id: bool
    accepted: frozenset[str] | None  # None: the handler takes **kwargs

    @classmethod
    def of(cls, func: Callable[..., Any]) -> Route:
        parameters = inspect.signature(func).parameters
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        return cls(
            func=func,
            is_async=inspect.iscoroutinefunction(func),
            wants_unique_id="call_unique_id" in parameters,
            accepted=None if var_kw else frozenset(parameters) - {"self", "call_unique_id"},
        )


def collect_routes(cls: type) -> tuple[dict[str, Route], dict[str, Route]]:
    on_routes: dict[str, Route] = {}
    after_routes: dict[str, Route] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if action := getattr(value, "_ocpp_on", None):
                on_routes[action] = Route.of(value)
            if action := getattr(value, "_ocpp_after", None):
                after_routes[action] = Route.of(value)
    return on_routes, after_routes
