"""The tests' broker is the demo's embedded broker (``gateway.sim.broker``)."""

from gateway.sim.broker import MosquittoBroker, free_port, wait_port

__all__ = ["MosquittoBroker", "free_port", "wait_port"]
