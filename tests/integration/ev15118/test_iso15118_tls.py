"""Issue 17, TLS for ISO 15118-20: the charger enforces TLS with the certificates
``provision-pki iso15118`` issued (V2G root, CPO Sub-CA 1 and 2, the SECC's leaf). An EV that
trusts that V2G root gets a DC_BPT session that discharges; one that trusts another root never
reaches the charge loop, and the gateway's log says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.doubles.waiting import eventually
from tests.integration.ev15118.harness import iso15118_bench
from tests.integration.ev15118.test_iso15118_session import (
    EV,
    SESSION_TIMEOUT_S,
    _discharging,
    _tag,
    pytestmark,
)
from v2g_common.pki.iso15118 import Iso15118Layout, provision_iso15118

__all__ = ["pytestmark"]

#: the station identity of the daemon harness (tests/doubles/station_setup.py)
CHARGER = "CS-0001"
TLS_SERVER_LINE = "TLS server started"


def _tls_bench(tmp_path: Path, *, ev_trusts: Iso15118Layout | None = None) -> Any:
    """The bench with TLS enforced by the charger (certificates from provision-pki); the EV
    trusts the charger's V2G root, or ``ev_trusts``'s."""
    pki = provision_iso15118(tmp_path / "pki", [CHARGER])
    return iso15118_bench(
        tmp_path,
        spec=EV,
        tag=_tag(),
        secc_pki_dir=pki.secc_dir(CHARGER),
        evcc_pki_dir=(ev_trusts or pki).evcc_dir,
    )


async def test_a_dc_bpt_session_over_enforced_tls_discharges(tmp_path: Path) -> None:
    async with _tls_bench(tmp_path) as bench:
        await _discharging(bench)
        log = bench.daemon.log()
        assert TLS_SERVER_LINE in log
        assert "TLS handshake with the EV failed" not in log
        assert bench.sim.status()["power_w"] <= -7000.0 * 0.95


async def test_an_ev_that_does_not_trust_the_chargers_root_never_charges(
    tmp_path: Path,
) -> None:
    stranger = provision_iso15118(tmp_path / "other-pki", [CHARGER])
    async with _tls_bench(tmp_path, ev_trusts=stranger) as bench:
        # the library's EVCC gives up after its TLS connection fails (no retry): one refusal
        await eventually(
            lambda: "TLS handshake with the EV failed" in bench.daemon.log(),
            timeout_s=SESSION_TIMEOUT_S,
        )
        await eventually(
            lambda: "CERTIFICATE_VERIFY_FAILED" in bench.evcc_log.read_text(), timeout_s=10
        )
        log = bench.daemon.log()
        assert TLS_SERVER_LINE in log
        assert "the EV closed the connection during the handshake" in log
        assert "ChargeLoop" not in log
        assert bench.ev().get("state") != "ChargeLoop"
        assert bench.csms.calls("NotifyEVChargingNeeds") == []
        assert not bench.sim.status()["contactor_closed"]
        assert bench.sim.status()["power_w"] == pytest.approx(0.0, abs=1.0)
