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
    """A new dispatch was not recorded (the journal failed, or its task died first): it is not
    accepted (a dispatch the core would forget, or never run, must not be promised)."""

    def __init__(self, dispatch_id: str, cause: str) -> None:
        self.dispatch_id = dispatch_id
        super().__init__(f"dispatch not accepted: {cause}; nothing was sent")
