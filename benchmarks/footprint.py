"""What each deployable loads: modules and resident memory per entry point, and the size of a
gateway-only install. Prints JSON.

    .venv/bin/python benchmarks/footprint.py                      # dev venv entry points
    .venv/bin/python benchmarks/footprint.py --gateway-venv DIR   # + a gateway bench venv
    .venv/bin/python benchmarks/footprint.py --build-gateway-venv  # with scripts/install-gateway

Every process is observed through ``tests/support/sysmodules/sitecustomize.py`` (on
``PYTHONPATH``): at a normal exit it writes its ``sys.modules`` and ``VmRSS``/``VmHWM``.

- ``daemon`` / ``control``: ``v2g-gateway`` with ``[station]`` (a CSMS that is not there) and
  ``[uplink]`` (a broker that is not there) against ``v2g-sim serve`` on a pty (SunSpec over
  Modbus RTU; sensor and contactor ``simulated``), run until systemd's READY=1 plus
  ``--settle`` seconds, then SIGTERM. ``rss_mb`` is VmRSS when the process exits (after the
  run), ``peak_rss_mb`` its VmHWM.
- ``check_config``: ``v2g-gateway --check-config`` on a field configuration (ina228, gpiod).
- ``core``, ``demo``, ``provision_pki``, ``calibrate_sensors``: ``--help`` (what their main
  module imports; everything they run is imported at module level or named in the boundary
  test).
- ``simulator``: ``v2g-sim serve`` until its control socket answers, then SIGTERM.
- ``gateway_venv``: installed size (MB, ``du`` of the venv), number of installed
  distributions (``pip list``, pip and setuptools included), and the daemon/control figures
  from that venv. ``--build-gateway-venv`` builds it with scripts/install-gateway, plus the
  bench variant (``--with-simulated-devices``) the daemon runs from against the simulator.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support.loaded_modules: the sys.modules recorder

from tests.support.loaded_modules import LoadedModules, probe_env, read_records  # noqa: E402

DEV_BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 60.0
INSTALL_ARGS = ["--no-accounts", "--python", sys.executable]


def read_dumps(dump_dir: Path) -> list[LoadedModules]:
    return read_records(dump_dir)


def summary(record: LoadedModules) -> dict[str, Any]:
    tops = sorted({m.split(".")[0] for m in record.modules if not m.startswith("_")})
    return {
        "modules": len(record.modules),
        "rss_mb": record.rss_mb,
        "peak_rss_mb": round(record.peak_rss_kb / 1024, 1),
        "top_level_packages": len(tops),
    }


def run_help(bin_dir: Path, script: str, tmp: Path) -> dict[str, Any]:
    dumps = tmp / f"help-{script}"
    dumps.mkdir()
    subprocess.run(
        [str(bin_dir / script), "--help"],
        env=probe_env(dumps),
        capture_output=True,
        check=True,
        timeout=120,
    )
    (record,) = read_dumps(dumps)
    return summary(record)


@contextlib.contextmanager
def simulator(tmp: Path, *, dump_dir: Path | None = None) -> Iterator[tuple[str, Path]]:
    sock = tmp / "sim.sock"
    env = probe_env(dump_dir) if dump_dir is not None else None
    process = subprocess.Popen(
        [str(DEV_BIN / "v2g-sim"), "serve", "--socket", str(sock), "--plug-in"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("tty: "):
            raise RuntimeError(f"v2g-sim did not start: {line!r}")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not sock.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("v2g-sim's control socket did not appear")
            time.sleep(0.05)
        yield line.split()[1], sock
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def gateway_toml(tmp: Path, tty: str, sim_sock: Path) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(
        f"""
[daemon]
log_level = "INFO"
[control]
period_s = 0.1
[power_module]
port = "{tty}"
parity = "N"
timeout_s = 0.3
retries = 1
[power_sensor]
kind = "simulated"
calibration_file = "{tmp / "cal.json"}"
[contactor]
kind = "simulated"
[simulator]
socket = "{sim_sock}"
[ev_link]
kind = "simulated"
[station]
csms_url = "ws://127.0.0.1:9/ocpp"
identity = "CS-FOOTPRINT"
security_profile = 1
password = "footprint-password-0001"
state_dir = "{tmp / "state"}"
[uplink]
site = "site-footprint"
region = "region-1"
broker_host = "127.0.0.1"
broker_port = 9
ca_file = "{tmp / "ca.pem"}"
cert_file = "{tmp / "site.pem"}"
key_file = "{tmp / "site.key"}"
outbox_path = "{tmp / "state" / "outbox.sqlite3"}"
"""
    )
    (tmp / "state").mkdir(exist_ok=True)
    return path


def wait_ready(notify: socket.socket, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"v2g-gateway exited with {process.returncode} before READY=1")
        ready, _, _ = select.select([notify], [], [], 0.2)
        if ready and b"READY=1" in notify.recv(4096):
            return
    raise RuntimeError("v2g-gateway sent no READY=1")


def run_daemon(bin_dir: Path, tmp: Path, *, settle_s: float) -> dict[str, Any]:
    """The daemon and its control process, against a simulator from the dev venv."""
    dumps = tmp / "daemon-dumps"
    dumps.mkdir()
    with simulator(tmp) as (tty, sim_sock):
        config = gateway_toml(tmp, tty, sim_sock)
        notify_path = tmp / "notify.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(notify_path))
            env = probe_env(dumps, NOTIFY_SOCKET=str(notify_path))
            process = subprocess.Popen(
                [str(bin_dir / "v2g-gateway"), "--config", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(tmp / "daemon.log").open("wb"),
            )
            try:
                wait_ready(notify, process)
                time.sleep(settle_s)  # a measurement window, not a synchronisation
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    records = {
        ("control" if "control_host" in " ".join(r.argv) else "daemon"): r
        for r in read_dumps(dumps)
    }
    return {name: summary(record) for name, record in sorted(records.items())}


def run_check_config(bin_dir: Path, tmp: Path) -> dict[str, Any]:
    dumps = tmp / "check-dumps"
    dumps.mkdir()
    config = tmp / "field.toml"
    config.write_text('[power_sensor]\nkind = "ina228"\n[contactor]\nkind = "gpiod"\n')
    subprocess.run(
        [str(bin_dir / "v2g-gateway"), "--config", str(config), "--check-config"],
        env=probe_env(dumps),
        capture_output=True,
        check=False,
        timeout=120,
    )
    records = read_dumps(dumps)
    return summary(records[0]) if records else {"error": "no record"}


def run_simulator(tmp: Path) -> dict[str, Any]:
    dumps = tmp / "sim-dumps"
    dumps.mkdir()
    sim_tmp = tmp / "sim"
    sim_tmp.mkdir()
    with simulator(sim_tmp, dump_dir=dumps):
        pass
    (record,) = read_dumps(dumps)
    return summary(record)


def venv_facts(venv: Path) -> dict[str, Any]:
    size = subprocess.run(["du", "-sk", str(venv)], capture_output=True, text=True, check=True)
    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = sorted(p["name"] for p in json.loads(listing.stdout))
    return {
        "installed_mb": round(int(size.stdout.split()[0]) / 1024, 1),
        "packages": len(names),
        "package_names": names,
    }


def build_gateway_venv(root: Path, *, simulated_devices: bool) -> Path:
    """scripts/install-gateway into ``root`` (host mode); with ``simulated_devices`` the
    bench variant (v2g-sim's adapters, --no-deps) the daemon needs to run on the simulator."""
    root.mkdir(parents=True)
    extra = ["--with-simulated-devices"] if simulated_devices else []
    subprocess.run(
        [
            str(ROOT / "scripts" / "install-gateway"),
            "--root",
            str(root),
            "--no-accounts",
            "--python",
            sys.executable,
            *extra,
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return root / "opt" / "v2g-gateway" / ".venv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gateway-venv", type=Path, help="a gateway venv with simulated devices to measure"
    )
    parser.add_argument(
        "--build-gateway-venv", action="store_true", help="build one with scripts/install-gateway"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds run after READY=1")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "dev").mkdir()
        result["dev_venv"] = {
            **run_daemon(DEV_BIN, tmp / "dev", settle_s=args.settle),
            "simulator": run_simulator(tmp),
            **{
                name.replace("-", "_"): run_help(DEV_BIN, name, tmp)
                for name in ("vpp-core", "vpp-demo", "provision-pki", "calibrate-sensors")
            },
        }
        if (DEV_BIN / "v2g-gateway").exists():
            (tmp / "check").mkdir()
            result["dev_venv"]["check_config"] = run_check_config(DEV_BIN, tmp / "check")
        if args.build_gateway_venv:
            venv = build_gateway_venv(tmp / "root", simulated_devices=False)
            bench = build_gateway_venv(tmp / "bench", simulated_devices=True)
            (tmp / "gw").mkdir()
            result["gateway_venv"] = {
                **venv_facts(venv),
                "bench_with_simulated_devices": venv_facts(bench),
                **run_daemon(bench / "bin", tmp / "gw", settle_s=args.settle),
            }
        elif args.gateway_venv is not None:
            (tmp / "gw").mkdir()
            result["gateway_venv"] = {
                **venv_facts(args.gateway_venv),
                **run_daemon(args.gateway_venv / "bin", tmp / "gw", settle_s=args.settle),
            }
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
