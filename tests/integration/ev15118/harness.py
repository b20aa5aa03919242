"""One ISO 15118 session end to end: the gateway daemon (its SECC process on the charger's end
of a veth pair) driving v2g-sim's power module, the simulator's EVCC on the EV's end in a
network namespace, and a raw OCPP 2.1 CSMS double."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.doubles.raw_csms import RawCsms
from tests.doubles.station_setup import PASSWORD
from tests.integration.gateway.daemon.daemon_harness import (
    RunningDaemon,
    RunningSim,
    daemon_starter,
    gateway_config,
    running_sim,
)
from tests.integration.gateway.daemon.test_daemon_ocpp_reset import (
    station_section as daemon_station_section,
)
from tests.support.ev_netns import EvCable, ev_cable
from v2g_sim.ev import EvSpec
from v2g_sim.ev15118 import evcc_command, evcc_settings, write_evcc_config

__all__ = ["ISO_PYTHON", "Iso15118Bench", "iso15118_bench"]

REPO = Path(__file__).resolve().parents[3]
#: The SECC/EVCC virtualenv scripts/setup builds.
ISO_PYTHON = Path(os.environ.get("V2G_ISO15118_PYTHON", REPO / ".venv-iso15118/bin/python"))

#: 3 kW/s: a 0 -> -7 kW step takes 2.3 s of ramp.
RAMP_W_PER_S = 3000.0


@dataclass
class Iso15118Bench:
    csms: RawCsms
    sim: RunningSim
    daemon: RunningDaemon
    cable: EvCable
    ev_status_file: Path
    evcc: subprocess.Popen[bytes]
    evcc_log: Path

    def ev(self) -> dict[str, Any]:
        """The EVCC's view (v2g_ev15118.evcc.EvView), {} before its first write."""
        try:
            return dict(json.loads(self.ev_status_file.read_text()))
        except (OSError, ValueError):
            return {}

    def silence_ev(self) -> None:
        """The EV stops talking mid-session (its process frozen, the TCP link kept)."""
        os.killpg(self.evcc.pid, signal.SIGSTOP)


def station_section(url: str, state_dir: Path, current: str) -> dict[str, Any]:
    """The daemon tests' station, sampling every second, idle until the VPP's setpoint,
    with one EVSE of ``current`` ("DC"/"AC") rated 11 kW."""
    return {
        **daemon_station_section(url, state_dir),
        "sampled_data_interval_s": 1.0,
        "default_charge_w": 0.0,
        "evses": [{"id": 1, "current_type": current, "max_power_w": 11000.0}],
    }


@contextlib.contextmanager
def _evcc(
    tmp_path: Path, sim: RunningSim, cable: EvCable, spec: EvSpec, **session: Any
) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    status = tmp_path / "ev-status.json"
    config = write_evcc_config(
        tmp_path / "evcc.json",
        evcc_settings(
            spec,
            interface=cable.ev_if,
            sim_socket=sim.socket,
            device_id=1,
            status_file=status,
            **session,
        ),
    )
    log_path = tmp_path / "evcc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            evcc_command(config, python=ISO_PYTHON, netns=cable.netns),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, status, log_path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def iso15118_bench(
    tmp_path: Path,
    *,
    spec: EvSpec,
    protocols: tuple[str, ...] = ("ISO_15118_20_DC",),
    current: str = "DC",
    tag: str,
    secc_protocols: tuple[str, ...] | None = None,
    sequence_timeout_s: float = 60.0,
    secc_pki_dir: Path | None = None,
    evcc_pki_dir: Path | None = None,
) -> AsyncIterator[Iso15118Bench]:
    """Everything started; the EV plugged in with ``spec`` and its EVCC talking.
    ``protocols`` are the EV's, ``secc_protocols`` the charger's (default: the EV's).
    ``secc_pki_dir``: the charger enforces TLS with these certificates; ``evcc_pki_dir``: the
    EV insists on TLS and trusts the V2G root there (``provision-pki iso15118``)."""
    tls = {} if secc_pki_dir is None else {"enforce_tls": True, "pki_dir": str(secc_pki_dir)}
    with contextlib.ExitStack() as stack:
        cable = stack.enter_context(ev_cable(tag))
        sim = stack.enter_context(running_sim(tmp_path / "sim.sock"))
        sim.request("plug-out")
        sim.request("plug-in", ev=asdict(spec))
        start = stack.enter_context(daemon_starter(tmp_path, sim))
        async with RawCsms(passwords={"CS-0001": PASSWORD}) as csms:
            config = gateway_config(
                tmp_path,
                sim,
                control={"ramp_w_per_s": RAMP_W_PER_S},
                local_lease={"enabled": False},
                station=station_section(csms.url, tmp_path / "state", current),
                ev_link={
                    "kind": "iso15118",
                    "iso15118": {
                        "interface": cable.charger_if,
                        "python": str(ISO_PYTHON),
                        "socket": str(tmp_path / "secc.sock"),
                        "protocols": list(secc_protocols or protocols),
                        "evse_id": "DE*V2G*E0001*1",
                        "sequence_timeout_s": sequence_timeout_s,
                        **tls,
                    },
                },
            )
            daemon = start(config)
            evcc, status, evcc_log = stack.enter_context(
                _evcc(
                    tmp_path,
                    sim,
                    cable,
                    spec,
                    current=current,
                    protocols=protocols,
                    pki_dir=evcc_pki_dir,
                )
            )
            yield Iso15118Bench(csms, sim, daemon, cable, status, evcc, evcc_log)
