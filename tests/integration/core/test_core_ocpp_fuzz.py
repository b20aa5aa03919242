"""A bounded OCPP-J fuzz of a running ``vpp-core`` (a real child process, the real
write-behind on a real SQLite file), with a bystander station transacting all along
(issue 13, must-show). Seeded: the same frames every run. More frames and the figures:
``benchmarks/ocpp_fuzz.py --frames N``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TestPki
from tests.support.core_process import CoreProcess
from tests.support.ocpp_fuzz.run import CORE_OVERRIDES, fuzz_accounts, run_fuzz

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]
FRAMES = 5000
CONNECTIONS = 4
SEED = 13
#: the kinds the issue lists, as the generator names them: each must have been sent
FRAME_KINDS = {
    "mutated payload", "wrong type id", "duplicate id", "answer for an unknown id",
    "truncated json", "invalid json", "invalid utf-8 text", "oversize", "binary json",
    "binary noise", "nested 3000",
}  # fmt: skip
MUTATIONS = {"integer outside int32", "negative integer", "string", "float", "object"}


async def test_fuzzed_frames_never_stop_the_core_nor_its_bystander(
    tmp_path: Path, pki: TestPki
) -> None:
    async with CoreProcess(
        tmp_path / "core",
        pki.layout,
        stations=fuzz_accounts(CONNECTIONS),
        overrides=CORE_OVERRIDES,
    ) as core:
        result = await run_fuzz(
            core,
            frames=FRAMES,
            connections=CONNECTIONS,
            seed=SEED,
            bystander_interval_s=0.02,
            checkpoint_s=0.1,  # the fuzz takes 1-5 s here; writes go every 0.5 s
        )
        exit_status = await core.stop()
    log = core.log_text()
    # the core never exited, and stops in order when asked
    assert result.core_alive, log[-3000:]
    assert exit_status == 0, log[-3000:]
    # every frame got what OCPP-J says: each CALL an answer under its id, unreadable frames a
    # CALLERROR, answers and SENDs nothing, refused websocket frames a close
    assert result.frames_sent >= FRAMES
    assert result.frames_by_kind.keys() >= FRAME_KINDS, result.frames_by_kind
    assert result.payload_mutations.keys() >= MUTATIONS, result.payload_mutations
    assert result.violations == [], result.violations
    assert sum(result.connection_closes.values()) > 0
    assert all(code in (1007, 1009) for code in _close_codes(result.connection_closes))
    # the core's own bugs would show as InternalError: there must be none
    assert "CALLERROR InternalError" not in result.answers, result.answers
    assert result.answers.get("CALLRESULT", 0) > 500
    # the bystander was served throughout, and its every sample reached the database,
    # during the fuzzing (rising) and after it
    assert result.bystander_failures == []
    assert result.bystander_round_trips >= 10
    assert len(result.bystander_rows_during) >= 2
    assert result.bystander_rows_during[-1] > result.bystander_rows_during[0]
    assert result.bystander_rows_after == result.bystander_samples_sent
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:4000]


def _close_codes(closes: dict[str, int]) -> list[int | None]:
    return [int(k.rsplit(": ", 1)[1]) if k.rsplit(": ", 1)[1] != "None" else None for k in closes]
