"""Certificates for the VPP: one root CA, TLS server certificates for the CSMS and the MQTT
broker, and client certificates whose CN is a station identity or a site id.

The CSMS binds a security-profile-3 station to the CN of its client certificate, and the
broker's ACL (``use_identity_as_username``) binds a site to its CN, so the CN *is* the identity.

The names below are imported on first use: :mod:`.tls` (the ``ssl`` contexts every
deployable needs) is stdlib only, while :mod:`.authority` and :mod:`.layout` (issuing
certificates: ``provision-pki``, the demo, the tests) need ``cryptography``, which a gateway
does not load (``v2g-common[pki]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from v2g_common.lazy import lazy_exports

if TYPE_CHECKING:
    from v2g_common.pki.authority import (
        CertificateAuthority,
        IssuedCertificate,
        PkiError,
        check_identity,
    )
    from v2g_common.pki.layout import PkiLayout, provision
    from v2g_common.pki.tls import client_context, peer_common_name, server_context

__all__ = [
    "CertificateAuthority",
    "IssuedCertificate",
    "PkiError",
    "PkiLayout",
    "check_identity",
    "client_context",
    "peer_common_name",
    "provision",
    "server_context",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "CertificateAuthority": "authority",
        "IssuedCertificate": "authority",
        "PkiError": "authority",
        "check_identity": "authority",
        "PkiLayout": "layout",
        "provision": "layout",
        "client_context": "tls",
        "peer_common_name": "tls",
        "server_context": "tls",
    },
)
