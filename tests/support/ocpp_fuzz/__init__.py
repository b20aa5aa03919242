"""A bounded OCPP-J fuzzer against a running core (``tests/integration/core/test_core_ocpp_fuzz.py``
in CI, ``benchmarks/ocpp_fuzz.py`` for more frames): seeded frames, OCPP-J's rules checked,
a bystander station that keeps transacting."""

from tests.support.ocpp_fuzz.run import FuzzResult, run_fuzz

__all__ = ["FuzzResult", "run_fuzz"]
