"""Handshake decisions without sockets: identities, Basic auth parsing, remembered passwords,
the login queue bound."""

from __future__ import annotations

import asyncio
import base64
from http import HTTPStatus
from typing import Any

import pytest

from vpp_core.csms.auth import HandshakeAuthority, identity_from_path
from vpp_core.fleet import StationEntry, hash_password

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


def _authority(**kwargs: Any) -> HandshakeAuthority:
    authority = HandshakeAuthority(allow_security_profile_1=False, **kwargs)
    hashed = hash_password(PASSWORD, log2_n=10)
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


async def test_remembered_password_skips_the_kdf_until_hash_changes() -> None:
    authority = _authority()
    tls = _Connection(_Tls(None))
    assert (await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)).reason == "password"
    again = await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD), tls)
    assert again.reason == "password (remembered)"
    wrong = await authority.admit("/ocpp/CS-2", _basic("CS-2", PASSWORD + "x"), tls)
    assert wrong.status == HTTPStatus.UNAUTHORIZED
    new_hash = hash_password("another-password-123", log2_n=10)
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


async def test_login_queue_is_bounded() -> None:
    authority = _authority(auth_queue_max=2)
    tls = _Connection(_Tls(None))
    header = _basic("CS-2", PASSWORD)
    results = await asyncio.gather(*(authority.admit("/ocpp/CS-2", header, tls) for _ in range(6)))
    statuses = [r.status for r in results]
    assert statuses.count(HTTPStatus.SERVICE_UNAVAILABLE) == 4
    assert statuses.count(None) == 2
    authority.close()
