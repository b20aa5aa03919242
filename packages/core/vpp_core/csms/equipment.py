"""What the CSMS knows about its stations besides the live fleet: the idToken policy, the
station certificates (issued, revoked, pinned) and the device models, kept in the fleet
database through :class:`~vpp_core.fleet.equipment.EquipmentStore`.

:class:`Equipment` is what the handlers and the handshake use (in memory, no I/O on the hot
path); its writes go to ``records`` from ``@after`` hooks, a failure logged once per run of
failures and counted, never raised into a handler. :class:`EquipmentSync` loads the tokens and
certificates at start and re-reads what the CLI changed while the core runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from vpp_core.csms.certificates import StationCertificates
from vpp_core.csms.config import CsmsConfig
from vpp_core.csms.errors import SigningCaUnusable
from vpp_core.csms.tokens import IdTokenPolicy
from vpp_core.fleet.equipment import CertificateRecord, DeviceVariable, EquipmentStore
from vpp_core.fleet.errors import StoreError

__all__ = ["Equipment", "EquipmentRecords", "EquipmentSync"]

log = logging.getLogger(__name__)


class EquipmentRecords(Protocol):
    """Where the CSMS writes what it learns (``EquipmentStore``)."""

    async def save_variables(self, station_id: str, variables: Iterable[DeviceVariable]) -> int: ...

    async def put_certificates(self, records: Iterable[CertificateRecord]) -> None: ...


@dataclass
class Equipment:
    tokens: IdTokenPolicy
    certificates: StationCertificates
    records: EquipmentRecords | None = None
    #: Writes to ``records`` that failed (logged once per run of failures).
    write_failures: int = 0
    _failing: bool = field(default=False, repr=False)

    @classmethod
    def from_config(
        cls, config: CsmsConfig, *, records: EquipmentRecords | None = None
    ) -> Equipment:
        authority = None
        if config.ca_cert_file is not None and config.ca_key_file is not None:
            from v2g_common.pki import CertificateAuthority, IssuedCertificate, PkiError

            try:
                root = IssuedCertificate.load(config.ca_cert_file, config.ca_key_file)
            except PkiError as exc:
                raise SigningCaUnusable(str(exc)) from None
            authority = CertificateAuthority(root)
        certificates = StationCertificates(
            authority,
            valid_days=config.station_certificate_valid_days,
            renew_before_days=config.certificate_renew_before_days,
        )
        return cls(IdTokenPolicy(config.id_token_policy), certificates, records)

    async def save_variables(self, station_id: str, variables: list[DeviceVariable]) -> None:
        if self.records is not None and variables:
            await self._write(self.records.save_variables(station_id, variables))

    async def save_certificates(self, records: list[CertificateRecord]) -> None:
        if self.records is not None and records:
            await self._write(self.records.put_certificates(records))

    async def _write(self, work: Awaitable[object]) -> None:
        try:
            await work
        except StoreError as exc:
            self.write_failures += 1
            if not self._failing:
                log.error("equipment records not written (kept in memory): %s", exc)
            self._failing = True
            return
        if self._failing:
            log.warning("equipment records written again")
        self._failing = False


#: Rows are re-read this far behind the newest revision seen. A revision is the writer's
#: ``time.time_ns()``: the CLI may run on a host whose clock is behind the core's, or after
#: an NTP step back, and its change must still apply (re-applying a row changes nothing).
LOOKBACK_NS = 300 * 10**9


class EquipmentSync:
    """Tokens and certificates from the database into ``equipment``, now and while running."""

    def __init__(self, equipment: Equipment, store: EquipmentStore) -> None:
        self._equipment = equipment
        self._store = store
        self._token_revision = 0
        self._certificate_revision = 0
        self._failing = False

    async def refresh(self) -> None:
        """Apply rows changed since the last read (all of them the first time), and those
        stamped up to :data:`LOOKBACK_NS` earlier."""
        tokens, newest = await self._store.tokens_since(_behind(self._token_revision))
        self._token_revision = max(self._token_revision, newest)
        certificates, newest = await self._store.certificates_since(
            _behind(self._certificate_revision)
        )
        self._certificate_revision = max(self._certificate_revision, newest)
        self._equipment.tokens.update(tokens)
        self._equipment.certificates.update(certificates)

    async def run(self, interval_s: float) -> None:
        """Refresh every ``interval_s`` until cancelled (a failure is logged once)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except StoreError as exc:
                if not self._failing:
                    log.error("cannot re-read idTokens / certificates: %s", exc)
                self._failing = True
            else:
                self._failing = False


def _behind(revision: int) -> int:
    return max(0, revision - LOOKBACK_NS)
