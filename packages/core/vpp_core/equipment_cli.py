"""``vpp-core tokens|certificates|device-model``: the CSMS's equipment records from the CLI.

    vpp-core tokens add 04A2B3C4 --type ISO14443 [--group G1] [--expires 2027-01-01T00:00Z]
    vpp-core tokens block|unblock|remove 04A2B3C4 --type ISO14443
    vpp-core tokens list [--json]
    vpp-core certificates list [--station CS-0001] [--json]
    vpp-core certificates revoke 5f3a... --station CS-0001 [--reason keyCompromise]
    vpp-core device-model CS-0001 [--json]

A running core picks up token and certificate changes within ``fleet.registry_refresh_s``
(the idToken policy must be ``token_list`` for the list to matter). ``remove`` keeps the token
as Invalid, so a running core sees the change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

from vpp_core.config import CoreConfig
from vpp_core.fleet.equipment import (
    CertificateRecord,
    EquipmentStore,
    IdTokenRecord,
)
from vpp_core.fleet.errors import FleetError
from vpp_core.fleet.store import FleetStore

__all__ = ["COMMANDS", "add_equipment_commands", "run_equipment_command"]

COMMANDS = frozenset({"tokens", "certificates", "device-model"})
_TOKEN_STATUS = {"block": "Blocked", "unblock": "Accepted", "remove": "Invalid"}
T = TypeVar("T")


def add_equipment_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    tokens = commands.add_parser("tokens", help="the idToken list (Authorize)").add_subparsers(
        dest="tokens_command", required=True
    )
    add = tokens.add_parser("add", parents=[common], help="add or change a token (Accepted)")
    _token_key(add)
    add.add_argument("--group", help="group idToken (groupIdToken)")
    add.add_argument("--expires", type=_timestamp, help="ISO 8601 expiry with offset")
    for name in _TOKEN_STATUS:
        _token_key(tokens.add_parser(name, parents=[common], help=f"{name} a token"))
    tokens.add_parser("list", parents=[common], help="list tokens").add_argument(
        "--json", action="store_true"
    )
    certificates = commands.add_parser(
        "certificates", help="station certificates (issued, revoked)"
    ).add_subparsers(dest="certificates_command", required=True)
    listing = certificates.add_parser("list", parents=[common], help="list certificates")
    listing.add_argument("--station")
    listing.add_argument("--json", action="store_true")
    revoke = certificates.add_parser(
        "revoke", parents=[common], help="refuse a certificate from now on"
    )
    revoke.add_argument("serial", help="certificate serial number, hex")
    revoke.add_argument("--station", required=True, help="the station it belongs to")
    revoke.add_argument("--reason", default="revoked by operator")
    model = commands.add_parser(
        "device-model", parents=[common], help="a station's device model as last reported"
    )
    model.add_argument("station_id")
    model.add_argument("--json", action="store_true")


def _token_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id_token")
    parser.add_argument("--type", required=True, help="IdToken type, e.g. ISO14443, eMAID")


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone offset")
    return value


async def _with_store(config: CoreConfig, action: Callable[[EquipmentStore], Awaitable[T]]) -> T:
    store = await FleetStore.open(config.fleet.database_url)
    try:
        return await action(EquipmentStore(store.engine))
    finally:
        await store.close()


def run_equipment_command(config: CoreConfig, args: argparse.Namespace) -> int:
    if args.command == "tokens":
        return _tokens(config, args)
    if args.command == "certificates":
        return _certificates(config, args)
    return _device_model(config, args)


def _tokens(config: CoreConfig, args: argparse.Namespace) -> int:
    sub = args.tokens_command
    if sub == "list":
        tokens = asyncio.run(_with_store(config, lambda s: s.tokens()))
        return _print(
            [_jsonable(t) for t in tokens],
            args.json,
            "{id_token:<24} {token_type:<14} {status:<9} {group_id} {expires_at}",
        )
    now = datetime.now(UTC)
    if sub == "add":
        token = IdTokenRecord(args.id_token, args.type, "Accepted", args.group, args.expires)
    else:
        existing = asyncio.run(_with_store(config, lambda s: s.token(args.id_token, args.type)))
        if existing is None:
            raise FleetError(f"no token {args.id_token!r} of type {args.type!r}")
        token = IdTokenRecord(
            existing.id_token,
            existing.token_type,
            _TOKEN_STATUS[sub],
            existing.group_id,
            existing.expires_at,
        )
    asyncio.run(_with_store(config, lambda s: s.put_token(token, now=now)))
    print(f"{token.id_token} ({token.token_type}): {token.status}")
    return 0


def _certificates(config: CoreConfig, args: argparse.Namespace) -> int:
    if args.certificates_command == "list":
        records = asyncio.run(_with_store(config, lambda s: s.certificates(args.station)))
        return _print(
            [_jsonable(r) for r in records],
            args.json,
            "{station_id:<20} {serial:<42} issued {issued_at}  revoked {revoked_at} "
            "{revocation_reason}",
        )
    serial = format(int(args.serial, 16), "x")
    now = datetime.now(UTC)

    async def revoke(store: EquipmentStore) -> CertificateRecord:
        known = {r.serial: r for r in await store.certificates()}
        base = known.get(serial) or CertificateRecord(serial, args.station)
        if base.station_id != args.station:
            raise FleetError(f"certificate {serial} belongs to {base.station_id!r}")
        record = CertificateRecord(
            **{**asdict(base), "revoked_at": now, "revocation_reason": args.reason}
        )
        await store.put_certificates([record])
        return record

    record = asyncio.run(_with_store(config, revoke))
    print(f"certificate {record.serial} of {record.station_id} revoked: {record.revocation_reason}")
    return 0


def _device_model(config: CoreConfig, args: argparse.Namespace) -> int:
    variables = asyncio.run(_with_store(config, lambda s: s.variables(args.station_id)))
    return _print(
        [_jsonable(v) for v in variables],
        args.json,
        "{component:<20} {evse_id!s:<5} {variable:<32} {variable_instance!s:<18} {value}",
    )


def _jsonable(record: Any) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(record).items()}


def _print(rows: list[dict[str, Any]], as_json: bool, line: str) -> int:
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(line.format(**row))
    return 0
