"""The tests' broker is the demo's embedded broker (``v2g_sim.broker``)."""

from v2g_sim.broker import MosquittoBroker, free_port, wait_port

__all__ = ["MosquittoBroker", "free_port", "wait_port"]
