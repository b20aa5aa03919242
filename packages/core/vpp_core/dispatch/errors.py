"""Errors raised by the dispatch engine."""

from __future__ import annotations

__all__ = [
    "DispatchConflictError",
    "DispatchError",
    "DispatchNotFoundError",
    "DispatchNotRecordedError",
    "InvalidDispatchError",
]


class DispatchError(Exception):
    """Base class of dispatch errors."""


class InvalidDispatchError(DispatchError):
    """A request that cannot be carried out as stated; ``reasons`` are (field, reason)."""

    def __init__(self, reasons: list[tuple[str, str]]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in reasons))


class DispatchConflictError(DispatchError):
    """The request overlaps another dispatch on some of the same sessions."""

    def __init__(self, other_id: str, shared_sessions: int) -> None:
        self.other_id = other_id
        self.shared_sessions = shared_sessions
        super().__init__(
            f"overlaps dispatch {other_id} in time on {shared_sessions} of the same sessions"
        )


class DispatchNotFoundError(DispatchError):
    """No dispatch with that id."""


class DispatchNotRecordedError(DispatchError):
    """The dispatch journal could not record a new dispatch: it is not accepted (a dispatch
    the core would forget in a crash must not be promised to the operator)."""

    def __init__(self, dispatch_id: str, waited_s: float | None) -> None:
        self.dispatch_id = dispatch_id
        cause = (
            "the journal refused the write"
            if waited_s is None
            else f"no answer from the journal in {waited_s:g} s"
        )
        super().__init__(
            f"dispatch not accepted: the dispatch journal could not record it ({cause}); "
            "nothing was sent"
        )
