"""Handshake decisions without sockets: identities, Basic auth parsing, remembered passwords,
the slow-check queue bound (503 + Retry-After), the rehash of old-scheme rows at login."""

from __future__ import annotations

import asyncio
import base64
from http import HTTPStatus
from typing import Any

import pytest

from vpp_core.csms.admission import PasswordLogins
from vpp_core.csms.auth import HandshakeAuthority, identity_from_path
from vpp_core.fleet import StationEntry, hash_password
from vpp_core.fleet.errors import StoreError
from vpp_core.fleet.registry import legacy_scrypt_hash

PASSWORD = "0123456789abcdef-pw"


class _Transport:
    def __init__(self, tls: Any) -> None:
        self._tls = tls

    def get_extra_info(self, name: str) -> Any:
        return self._tls if name == "ssl_object" else None


class _Connection:
    def __init__(self, tls: Any = None) -> None:
        self.transport = _Transport(tls)


class _Tls:
    def __init__(self, cn: str | None) -> None:
        self.cn = cn

    def getpeercert(self) -> dict[str, Any] | None:
        return {"subject": ((("commonName", self.cn),),)} if self.cn else {}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class _RehashStore:
    """The fleet store's compare-and-set, in memory; ``fail`` makes it raise."""

    def __init__(self, rows: dict[str, str], *, fail: bool = False) -> None:
        self.rows = rows
        self.fail = fail

    async def replace_password_hash(self, station_id: str, *, old: str, new: str) -> bool:
        if self.fail:
            raise StoreError("database unreachable")
        if self.rows.get(station_id) != old:
            return False
        self.rows[station_id] = new
        return True


def _authority(hashed: str | None = None, **kwargs: Any) -> HandshakeAuthority:
    authority = HandshakeAuthority(
        allow_security_profile_1=False, passwords=PasswordLogins(**kwargs)
    )
    hashed = hashed or hash_password(PASSWORD)
    authority.entries = {
        "CS-2": StationEntry("CS-2", 2, True, "s", "r", hashed),
        "CS-3": StationEntry("CS-3", 3, True, "s", "r", None),
    }
    return authority


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/ocpp/CS-1", "CS-1"),
        ("/CS-1/", "CS-1"),
        ("/ocpp/CS%2F1", None),  # decodes to a path separator inside the last segment
        ("/ocpp/CS%201", "CS 1"),
        ("/ocpp/", "ocpp"),
        ("/", None),
        ("/ocpp/a:b", None),
        ("/ocpp/" + "x" * 49, None),
    ],
)
def test_identity_from_path(path: str, identity: str | None) -> None:
    assert identity_from_path(path) == identity


async def test_profile2_decisions() -> None:
    authority = _authority()
    tls = _Connection(_Tls(None))
    ok = await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)
    assert ok.status is None
    assert (
        await authority.admit("/ocpp/CS-2", _basic("CS-3", PASSWORD), tls)
    ).status == HTTPStatus.UNAUTHORIZED
    assert (await authority.admit("/ocpp/CS-2", "Basic !!!", tls)).status == HTTPStatus.UNAUTHORIZED
    assert (await authority.admit("/ocpp/CS-2", "Bearer x", tls)).status == HTTPStatus.UNAUTHORIZED
    plain = await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), _Connection(None))
    assert plain.status == HTTPStatus.FORBIDDEN  # profile 2 needs TLS
    authority.close()


async def test_remembered_password_skips_the_check_until_hash_changes() -> None:
    authority = _authority()
    tls = _Connection(_Tls(None))
    assert (await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)).reason == "password"
    again = await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)
    assert again.reason == "password (remembered)"
    wrong = await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD + "x"), tls)
    assert wrong.status == HTTPStatus.UNAUTHORIZED
    new_hash = hash_password("another-password-123")
    authority.entries["CS-2"] = StationEntry("CS-2", 2, True, "s", "r", new_hash)
    stale = await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)
    assert stale.status == HTTPStatus.UNAUTHORIZED  # the old password no longer opens the door
    authority.close()


async def test_profile3_certificate_must_name_the_station() -> None:
    authority = _authority()
    assert (await authority.admit("/x/CS-3", None, _Connection(_Tls("CS-3")))).status is None
    other = await authority.admit("/x/CS-3", None, _Connection(_Tls("CS-2")))
    assert other.status == HTTPStatus.FORBIDDEN
    assert (
        await authority.admit("/x/CS-3", None, _Connection(_Tls(None)))
    ).status == HTTPStatus.FORBIDDEN
    assert (
        await authority.admit("/x/CS-3", None, _Connection(None))
    ).status == HTTPStatus.FORBIDDEN
    authority.close()


async def test_a_wrong_password_is_never_admitted_from_the_cache() -> None:
    authority = _authority()
    tls = _Connection(_Tls(None))
    wrong = _basic("CS-2", PASSWORD[:-1] + "X")
    assert (await authority.admit("/ocpp/CS-2", wrong, tls)).status == HTTPStatus.UNAUTHORIZED
    assert (await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)).status is None
    for attempt in (wrong, _basic("CS-2", PASSWORD + "x"), _basic("CS-2", PASSWORD[:16])):
        refused = await authority.admit("/ocpp/CS-2", attempt, tls)
        assert (refused.status, refused.reason) == (HTTPStatus.UNAUTHORIZED, "wrong password")
    authority.close()


async def test_slow_checks_are_bounded_with_503_and_retry_after() -> None:
    authority = _authority(legacy_scrypt_hash(PASSWORD, log2_n=10), queue_max=2, retry_after_s=5)
    tls = _Connection(_Tls(None))
    header = _basic("CS-2", PASSWORD)
    results = await asyncio.gather(*(authority.admit("/ocpp/CS-2", header, tls) for _ in range(6)))
    statuses = [r.status for r in results]
    assert statuses.count(HTTPStatus.SERVICE_UNAVAILABLE) == 4
    assert statuses.count(None) == 2
    retry = {r.retry_after_s for r in results if r.status == HTTPStatus.SERVICE_UNAVAILABLE}
    assert retry <= set(range(5, 11))
    assert all(r.retry_after_s is None for r in results if r.status is None)
    authority.close()


async def test_a_503_response_carries_the_retry_after_header() -> None:
    authority = _authority(legacy_scrypt_hash(PASSWORD, log2_n=10), queue_max=1, retry_after_s=7)
    request = _Request("/ocpp/CS-2", _basic("CS-2", PASSWORD))
    connection = _Responder()
    responses = await asyncio.gather(
        *(authority.process_request(connection, request) for _ in range(3))
    )  # type: ignore[arg-type]
    refused = [r for r in responses if r is not None]
    assert len(refused) == 2
    assert all(r.status_code == 503 and 7 <= int(r.headers["Retry-After"]) <= 14 for r in refused)
    authority.close()


async def test_an_old_scheme_row_is_rehashed_at_login_and_still_opens() -> None:
    old = legacy_scrypt_hash(PASSWORD, log2_n=10)
    store = _RehashStore({"CS-2": old})
    authority = _authority(old, rehash_store=store)
    tls = _Connection(_Tls(None))
    assert (await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)).status is None
    new = store.rows["CS-2"]
    assert new.startswith("hmac-sha256$")
    assert authority.entries["CS-2"].password_hash == new
    restarted = _authority(new)  # a new process: nothing remembered, the fast row verifies
    assert (await restarted.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)).status is None
    wrong = await restarted.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD + "x"), tls)
    assert wrong.status == HTTPStatus.UNAUTHORIZED
    authority.close()
    restarted.close()


async def test_a_password_changed_meanwhile_wins_over_the_rehash() -> None:
    old = legacy_scrypt_hash(PASSWORD, log2_n=10)
    changed = hash_password("a-new-password-from-the-cli")
    store = _RehashStore({"CS-2": changed})  # the CLI replaced it after the core loaded it
    authority = _authority(old, rehash_store=store)
    tls = _Connection(_Tls(None))
    assert (await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)).status is None
    assert store.rows["CS-2"] == changed
    assert authority.entries["CS-2"].password_hash == old  # the registry refresh brings the new
    authority.close()


async def test_a_failing_rehash_store_still_admits_and_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = legacy_scrypt_hash(PASSWORD, log2_n=10)
    results: list[str] = []
    authority = _authority(old, rehash_store=_RehashStore({}, fail=True), on_rehash=results.append)
    for identity in ("CS-2", "CS-2b"):
        authority.entries[identity] = StationEntry(identity, 2, True, "s", "r", old)
        admitted = await authority.admit(
            f"/ocpp/{identity}", _basic(identity, PASSWORD), _Connection(_Tls(None))
        )
        assert admitted.status is None
    assert results == ["failed", "failed"]
    assert len([r for r in caplog.records if "cannot store the rehashed" in r.message]) == 1
    authority.close()


class _Request:
    def __init__(self, path: str, authorization: str) -> None:
        self.path = path
        self.headers = {"Authorization": authorization}


class _Responder(_Connection):
    """What process_request uses of a websockets ServerConnection: transport and respond."""

    def __init__(self) -> None:
        super().__init__(_Tls(None))

    def respond(self, status: HTTPStatus, text: str) -> Any:
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        return Response(status.value, status.phrase, Headers(), text.encode())
