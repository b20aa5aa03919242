"""Grid-operator HTTP API (FastAPI): dispatches in, reports out. See :func:`create_api`."""

from vpp_core.api.app import create_api

__all__ = ["create_api"]
