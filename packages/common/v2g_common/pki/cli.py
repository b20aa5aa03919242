"""``provision-pki``: the technician's certificate tool.

    provision-pki init   --dir /etc/v2g/pki [--host csms.example.net --host 10.0.0.5]
    provision-pki client --dir /etc/v2g/pki CS-0001 CS-0002 site-berlin-01
    provision-pki iso15118 --dir /etc/v2g/pki CS-0001   (ISO 15118-20 TLS: V2G root, CPO
                                                         Sub-CAs, the SECC's leaf)
    provision-pki show   --dir /etc/v2g/pki

Files are written with mode 0600 and never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from v2g_common.pki.authority import PkiError
from v2g_common.pki.iso15118 import provision_iso15118
from v2g_common.pki.layout import PkiLayout, provision


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="provision-pki", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the CA and the csms/broker server certificates")
    init.add_argument("--host", action="append", default=[], help="server DNS name or IP (repeat)")
    client = sub.add_parser("client", help="issue client certificates (CN = identity)")
    client.add_argument("identities", nargs="+", help="station identities or site ids")
    iso = sub.add_parser(
        "iso15118",
        help="ISO 15118-20 TLS: V2G root, CPO Sub-CA 1 and 2, an SECC leaf per charger "
        "(CN = identity) in iso15118/secc/<id>/, the EVCC's trust anchor in iso15118/evcc/",
    )
    iso.add_argument("identities", nargs="+", help="charger (station) identities")
    show = sub.add_parser("show", help="list the certificates in the directory")
    for p in (init, client, iso, show):
        p.add_argument("--dir", type=Path, required=True, help="PKI directory")
        p.add_argument("--force", action="store_true", help="overwrite existing files")
    return parser


def _show(layout: PkiLayout) -> None:
    for pem in sorted(layout.root.rglob("*.pem")):
        if pem.name == "cpoCertChain.pem":
            continue  # the leaf and Sub-CAs again
        cert = x509.load_pem_x509_certificate(pem.read_bytes())
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        until = cert.not_valid_after_utc.date().isoformat()
        print(f"{pem.relative_to(layout.root)}\tCN={cn!s}\tvalid until {until}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "init":
            hosts = args.host or ["localhost", "127.0.0.1"]
            layout = provision(args.dir, server_hosts=hosts, force=args.force)
        elif args.command == "client":
            layout = provision(args.dir, clients=args.identities, force=args.force)
        elif args.command == "iso15118":
            provision_iso15118(args.dir, args.identities, force=args.force)
            layout = PkiLayout(args.dir)
        else:
            layout = PkiLayout(args.dir)
        _show(layout)
    except PkiError as exc:
        print(f"provision-pki: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
