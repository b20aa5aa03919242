"""Where provisioned certificates live on disk, and provisioning a whole set at once.

```
<root>/ca.pem  ca.key                      root CA (keep ca.key offline in production)
<root>/servers/<name>.pem|.key             csms, broker
<root>/clients/<identity>.pem|.key         stations, sites, and the core's own client (core)
```
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from v2g_common.pki.authority import CertificateAuthority, IssuedCertificate, PkiError

__all__ = ["PkiLayout", "provision"]


@dataclass(frozen=True)
class PkiLayout:
    """Paths of a provisioned PKI directory."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    def server_cert(self, name: str) -> Path:
        return self.root / "servers" / f"{name}.pem"

    def server_key(self, name: str) -> Path:
        return self.root / "servers" / f"{name}.key"

    def client_cert(self, identity: str) -> Path:
        return self.root / "clients" / f"{identity}.pem"

    def client_key(self, identity: str) -> Path:
        return self.root / "clients" / f"{identity}.key"

    def load_authority(self) -> CertificateAuthority:
        if not self.ca_cert.exists():
            raise PkiError(f"no CA at {self.ca_cert}; run provision-pki init first")
        return CertificateAuthority(IssuedCertificate.load(self.ca_cert, self.ca_key))

    def write_server(self, name: str, cert: IssuedCertificate, *, force: bool) -> None:
        cert.write(self.server_cert(name), self.server_key(name), force=force)

    def write_client(self, cert: IssuedCertificate, *, force: bool) -> None:
        cert.write(
            self.client_cert(cert.common_name), self.client_key(cert.common_name), force=force
        )


def provision(
    root: Path,
    *,
    server_hosts: Iterable[str] = ("localhost", "127.0.0.1"),
    clients: Iterable[str] = (),
    force: bool = False,
) -> PkiLayout:
    """Create (or extend) a PKI directory: the CA if missing, ``csms`` and ``broker`` server
    certificates for ``server_hosts`` if missing, and a client certificate per identity.

    Existing files are never replaced unless ``force``; asking for an existing client
    certificate without ``force`` raises :class:`PkiError`.
    """
    layout = PkiLayout(root)
    if layout.ca_cert.exists() and not force:
        ca = layout.load_authority()
    else:
        ca = CertificateAuthority.create()
        ca.root.write(layout.ca_cert, layout.ca_key, force=force)
    hosts = list(server_hosts)
    ips = [h for h in hosts if _is_ip(h)]
    names = [h for h in hosts if not _is_ip(h)]
    for server in ("csms", "broker"):
        if force or not layout.server_cert(server).exists():
            issued = ca.issue_server(server, dns_names=names, ip_addresses=ips)
            layout.write_server(server, issued, force=force)
    for identity in clients:
        layout.write_client(ca.issue_client(identity), force=force)
    return layout


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
