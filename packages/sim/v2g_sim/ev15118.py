"""The simulated EV's ISO 15118 side: the iso15118 library's EVCC (``v2g_ev15118.evcc``, in
``.venv-iso15118``) configured from an :class:`~v2g_sim.ev.EvSpec`, so ``v2g-sim`` drives a
real DIN / -2 / -20 session against a gateway's SECC over a network interface.

The EVCC reads the EV's battery (SoC, power) from the simulator's control socket, so the
SoC it reports over ISO 15118 is the simulated battery's. Which protocols and which -20
energy service the EV offers are the session's, not the battery's: a ``bidirectional`` EV
asks for ``DC_BPT`` (or ``AC_BPT``), a charge-only one for ``DC`` (``AC``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from v2g_sim.ev import EvSpec

__all__ = ["evcc_command", "evcc_settings", "write_evcc_config"]

_SPEC_FIELDS = (
    "battery_capacity_wh",
    "min_soc_pct",
    "max_soc_pct",
    "target_soc_pct",
    "max_charge_w",
    "min_charge_w",
    "max_discharge_w",
    "min_discharge_w",
    "departure_in_s",
)


def evcc_settings(
    spec: EvSpec,
    *,
    interface: str,
    sim_socket: Path,
    device_id: int,
    status_file: Path,
    current: str = "DC",
    protocols: tuple[str, ...] = ("ISO_15118_20_DC",),
    pki_dir: Path | None = None,
) -> dict[str, Any]:
    """The EVCC's settings (``v2g_ev15118.evcc.EvccSettings`` as JSON) for ``spec``. With
    ``pki_dir`` (``provision-pki iso15118``'s ``iso15118/evcc``: the V2G root it trusts) the
    EV asks for TLS and insists on it."""
    if current not in ("AC", "DC"):
        raise ValueError(f"current must be 'AC' or 'DC', not {current!r}")
    service = f"{current}_BPT" if spec.bidirectional else current
    values = asdict(spec)
    return {
        "interface": interface,
        "sim_socket": str(sim_socket),
        "device_id": device_id,
        "status_file": str(status_file),
        "ev_id": spec.ev_id,
        "service": service,
        "protocols": list(protocols),
        "use_tls": pki_dir is not None,
        "pki_dir": None if pki_dir is None else str(pki_dir),
        **{name: values[name] for name in _SPEC_FIELDS},
    }


def write_evcc_config(path: Path, settings: dict[str, Any]) -> Path:
    path.write_text(json.dumps(settings, indent=2))
    return path


def evcc_command(config: Path, *, python: Path, netns: str | None = None) -> list[str]:
    """The EVCC's command line; inside network namespace ``netns`` when given (the EV's end
    of the link)."""
    argv = [str(python), "-m", "v2g_ev15118.evcc", "--config", str(config)]
    return ["ip", "netns", "exec", netns, *argv] if netns else argv
