"""The station's device model (B06 GetVariables, B05 SetVariables, B07 GetBaseReport) from
tables: each case names a component/variable and the status and value expected; writes reach
the station's settings and survive a reopen of the state database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v21 import call as call21

from tests.doubles.variables import ref
from v2g_common.ocpp21 import codec_for
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.device_model import DeviceModel, VariableKey
from v2g_gateway.station.settings import StationSettings
from v2g_gateway.station.store import WrittenVariables, open_state_db
from v2g_gateway.station.variables import StationFacts, station_variables

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def config(tmp_path: Path) -> StationConfig:
    return StationConfig(
        csms_url="ws://127.0.0.1:9/ocpp",
        identity="CS-DM",
        security_profile=1,
        password="p" * 16,
        state_dir=tmp_path,
    )


class Model:
    def __init__(self, tmp_path: Path) -> None:
        self.config = config(tmp_path)
        self.settings = StationSettings.from_config(self.config)
        self.interval_changes = 0
        self.db = open_state_db(tmp_path)
        facts = StationFacts(
            now=lambda: NOW,
            station_state=lambda: "Available",
            evse_state=lambda evse_id: "Occupied",
            evse_operative=lambda evse_id: True,
            sampled_interval_changed=self._changed,
        )
        variables = station_variables(self.config, self.settings, facts)
        self.model = DeviceModel(variables, WrittenVariables(self.db))

    def _changed(self) -> None:
        self.interval_changes += 1


GETS = [
    (ref("OCPPCommCtrlr", "HeartbeatInterval"), "Accepted", "300"),
    (ref("OCPPCommCtrlr", "MessageAttempts", instance="TransactionEvent"), "Accepted", "3"),
    (ref("SampledDataCtrlr", "TxUpdatedInterval"), "Accepted", "60"),
    (ref("EVSE", "Power", evse=1), "Accepted", "22000"),
    (
        ref("V2XChargingCtrlr", "SupportedOperationModes", evse=1),
        "Accepted",
        "Idle,ChargingOnly,CentralSetpoint,LocalFrequency,CentralFrequency",
    ),
    (ref("V2XChargingCtrlr", "SupportedEnergyTransferModes", evse=1), "Accepted", "DC,DC_BPT"),
    (ref("SecurityCtrlr", "Identity"), "Accepted", "CS-DM"),
    (ref("TxCtrlr", "TxStartPoint"), "Accepted", "EVConnected"),
    (ref("ClockCtrlr", "DateTime"), "Accepted", NOW.isoformat()),
    (ref("EVSE", "Power"), "UnknownComponent", None),  # an EVSE variable needs its EVSE
    (ref("EVSE", "Power", evse=9), "UnknownComponent", None),
    (ref("OCPPCommCtrlr", "NoSuchVariable"), "UnknownVariable", None),
    (ref("NoSuchCtrlr", "Enabled"), "UnknownComponent", None),
    (
        ref("OCPPCommCtrlr", "HeartbeatInterval", attribute_type="Target"),
        "NotSupportedAttributeType",
        None,
    ),
]


@pytest.mark.parametrize(("request_", "status", "value"), GETS, ids=[str(g[0]) for g in GETS])
def test_get_variables(
    tmp_path: Path, request_: dict[str, Any], status: str, value: str | None
) -> None:
    [result] = Model(tmp_path).model.get([request_])
    assert result["attribute_status"] == status
    assert result.get("attribute_value") == value
    assert result["component"] == request_["component"]


SETS = [
    (ref("SampledDataCtrlr", "TxUpdatedInterval"), "15", "Accepted", None),
    (ref("SampledDataCtrlr", "TxUpdatedInterval"), "abc", "Rejected", "InvalidValue"),
    (ref("SampledDataCtrlr", "TxUpdatedInterval"), "0", "Rejected", "InvalidValue"),
    (ref("SampledDataCtrlr", "TxUpdatedInterval"), "1.5", "Rejected", "InvalidValue"),
    (ref("OCPPCommCtrlr", "HeartbeatInterval"), "120", "Accepted", None),
    (ref("OCPPCommCtrlr", "WebSocketPingInterval"), "30", "RebootRequired", None),
    (ref("SecurityCtrlr", "Identity"), "CS-OTHER", "Rejected", "ReadOnly"),
    (ref("OCPPCommCtrlr", "NoSuchVariable"), "1", "UnknownVariable", None),
]


@pytest.mark.parametrize(
    ("request_", "value", "status", "reason"),
    SETS,
    ids=[f"{s[0]['variable']['name']}={s[1]}" for s in SETS],
)
def test_set_variables(
    tmp_path: Path, request_: dict[str, Any], value: str, status: str, reason: str | None
) -> None:
    m = Model(tmp_path)
    before = m.model.get([request_])[0].get("attribute_value")
    [result] = m.model.set([{**request_, "attribute_value": value}])
    assert result["attribute_status"] == status
    assert result.get("attribute_status_info", {}).get("reason_code") == reason
    after = m.model.get([request_])[0].get("attribute_value")
    assert after == (value if status in ("Accepted", "RebootRequired") else before)


def test_writes_reach_the_station_and_survive_a_restart(tmp_path: Path) -> None:
    m = Model(tmp_path)
    m.model.set(
        [
            {**ref("SampledDataCtrlr", "TxUpdatedInterval"), "attribute_value": "15"},
            {
                **ref("OCPPCommCtrlr", "MessageAttempts", instance="TransactionEvent"),
                "attribute_value": "7",
            },
        ]
    )
    assert m.settings.sampled_data_interval_s == 15.0
    assert m.settings.transaction_message_attempts == 7
    assert m.interval_changes == 1
    m.db.close()
    reopened = Model(tmp_path)
    assert reopened.settings.sampled_data_interval_s == 15.0
    assert reopened.settings.transaction_message_attempts == 7
    assert (
        reopened.model.get([ref("SampledDataCtrlr", "TxUpdatedInterval")])[0]["attribute_value"]
        == "15"
    )


def test_a_stored_value_the_code_no_longer_accepts_is_skipped(tmp_path: Path) -> None:
    m = Model(tmp_path)
    stored = WrittenVariables(m.db)
    stored.save(VariableKey("SampledDataCtrlr", "TxUpdatedInterval").stored_name, "-5")
    stored.save(VariableKey("SecurityCtrlr", "Identity").stored_name, "CS-OTHER")
    stored.save(VariableKey("Gone", "Variable").stored_name, "1")
    m.db.close()
    reopened = Model(tmp_path)
    assert reopened.settings.sampled_data_interval_s == 60.0
    assert reopened.model.get([ref("SecurityCtrlr", "Identity")])[0]["attribute_value"] == "CS-DM"


@pytest.mark.parametrize("base", ["FullInventory", "ConfigurationInventory", "SummaryInventory"])
def test_base_reports_are_schema_valid(tmp_path: Path, base: str) -> None:
    data = Model(tmp_path).model.report(base)
    request = call21.NotifyReport(
        request_id=1, generated_at=NOW.isoformat(), seq_no=0, report_data=data
    )
    for subprotocol in ("ocpp2.1", "ocpp2.0.1"):
        codec_for(subprotocol).encode_request(request)  # raises RequestInvalid if not
    mutability = {d["variable_attribute"][0]["mutability"] for d in data}
    names = {(d["component"]["name"], d["variable"]["name"]) for d in data}
    if base == "ConfigurationInventory":
        assert mutability == {"ReadWrite"}
        assert ("SampledDataCtrlr", "TxUpdatedInterval") in names
    elif base == "SummaryInventory":
        assert {n for _, n in names} <= {"AvailabilityState", "Available"}
        assert ("Connector", "AvailabilityState") in names
    else:
        assert mutability == {"ReadWrite", "ReadOnly"}
        assert ("V2XChargingCtrlr", "SupportedOperationModes") in names
        assert ("SmartChargingCtrlr", "RateUnit") in names
        assert len(data) > 50  # more than one NotifyReport's worth
