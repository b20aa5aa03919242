"""A charging cable for ISO 15118 tests: a veth pair whose EV end lives in a network namespace
the test owns, the charger's end on this host (where the gateway's SECC process runs). Both
ends get IPv6 link-local addresses (loopback has none, and SDP is link-local multicast).

Needs root (``ip netns``); :func:`netns_unavailable` says why not otherwise, for a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from tests.doubles.waiting import wait_for

__all__ = ["EvCable", "ev_cable", "netns_unavailable"]


@dataclass(frozen=True)
class EvCable:
    netns: str  # the EV's namespace
    charger_if: str  # on this host: the SECC's interface
    ev_if: str  # in ``netns``: the EVCC's interface


def netns_unavailable() -> str | None:
    """Why this machine cannot make the cable (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth)"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    return None


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _link_local_ready(*args: str) -> bool:
    out = _ip(*args)
    return "fe80::" in out and "tentative" not in out


@contextlib.contextmanager
def ev_cable(tag: str) -> Iterator[EvCable]:
    """A fresh namespace and veth pair named after ``tag`` (<= 8 characters), removed after."""
    cable = EvCable(netns=f"v2gev-{tag}", charger_if=f"v2gc{tag}", ev_if=f"v2ge{tag}")
    _ip("netns", "add", cable.netns)
    try:
        _ip("link", "add", cable.charger_if, "type", "veth", "peer", "name", cable.ev_if)
        _ip("link", "set", cable.ev_if, "netns", cable.netns)
        _ip("link", "set", cable.charger_if, "up")
        _ip("-n", cable.netns, "link", "set", cable.ev_if, "up")
        _ip("-n", cable.netns, "link", "set", "lo", "up")
        wait_for(
            lambda: (
                _link_local_ready("-6", "addr", "show", "dev", cable.charger_if)
                and _link_local_ready("-n", cable.netns, "-6", "addr", "show", "dev", cable.ev_if)
            ),
            timeout_s=10.0,
            what="IPv6 link-local addresses on both ends (DAD done)",
        )
        yield cable
    finally:
        subprocess.run(["ip", "link", "del", cable.charger_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", cable.netns], capture_output=True)
