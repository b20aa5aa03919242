"""The fleet database: one SQLAlchemy Core schema for SQLite and PostgreSQL, and migrations.

Migrations are numbered; ``schema_version`` records which ran. Migration 1 creates the
tables below. A later change adds migration N with its ``ALTER`` statements (and pins the
table shapes migration 1 created, if they differ from the current metadata).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "metadata"]


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both back ends (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_AutoId = BigInteger().with_variant(Integer, "sqlite")
metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

stations = Table(
    "stations",
    metadata,
    Column("station_id", String(48), primary_key=True),
    Column("security_profile", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("site", String(64), nullable=False),
    Column("region", String(64), nullable=False),
    Column("password_hash", Text),
    Column("created_at", UtcDateTime, nullable=False),
    # Raised on every change (time.time_ns()): a running core re-reads only newer rows.
    Column("revision", BigInteger, nullable=False, index=True),
)

station_state = Table(
    "station_state",
    metadata,
    Column("station_id", String(48), primary_key=True),
    Column("connected", Boolean, nullable=False),
    Column("last_seen", UtcDateTime),
    Column("subprotocol", String(16)),
    Column("vendor", String(64)),
    Column("model", String(64)),
    Column("firmware", String(64)),
    Column("boot_reason", String(32)),
    Column("booted_at", UtcDateTime),
)

evse_state = Table(
    "evse_state",
    metadata,
    Column("station_id", String(48), primary_key=True),
    Column("evse_id", Integer, primary_key=True, autoincrement=False),
    Column("connector_status", String(16)),
    Column("plugged", Boolean, nullable=False),
    Column("updated_at", UtcDateTime),
    Column("limit_source", String(32)),
    Column("limit_grid_critical", Boolean),
    Column("limit_schedule", JSON),
    Column("limit_at", UtcDateTime),
    Column("pending_needs", JSON),
)

sessions = Table(
    "sessions",
    metadata,
    Column("station_id", String(48), primary_key=True),
    Column("transaction_id", String(36), primary_key=True),
    Column("evse_id", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("plugged", Boolean, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("stopped_reason", String(32)),
    Column("charging_state", String(16)),
    Column("seq_no", BigInteger),
    Column("soc_pct", Float),
    Column("soc_at", UtcDateTime),
    Column("max_charge_w", Float, nullable=False),
    Column("min_charge_w", Float, nullable=False),
    Column("max_discharge_w", Float, nullable=False),
    Column("min_discharge_w", Float, nullable=False),
    Column("target_soc_pct", Float),
    Column("departure", UtcDateTime),
    Column("ev_min_v2x_energy_wh", Float),
    Column("ev_max_v2x_energy_wh", Float),
    Column("ev_target_energy_wh", Float),
    Column("ev_min_energy_wh", Float),
    Column("ev_max_energy_wh", Float),
    Column("battery_capacity_wh", Float),
    Column("control_mode", String(32)),
    Column("needs_at", UtcDateTime),
    # migration 4 (who may be dispatched): the EV's requested energy transfer mode, the modes
    # the CSMS last allowed (a JSON list), NotifyPriorityCharging's state
    Column("requested_energy_transfer", String(20)),
    Column("allowed_energy_transfer", JSON),
    Column("priority_charging", Boolean),
    Column("present_power_w", Float, nullable=False),
    Column("energy_import_wh", Float, nullable=False),
    Column("energy_export_wh", Float, nullable=False),
    Column("meter_at", UtcDateTime),
    Column("last_seen", UtcDateTime),
)
Index("ix_sessions_active", sessions.c.active)

session_samples = Table(
    "session_samples",
    metadata,
    Column("station_id", String(48), primary_key=True),
    Column("transaction_id", String(36), primary_key=True),
    Column("sampled_at", UtcDateTime, primary_key=True),
    Column("power_w", Float),
    Column("energy_import_wh", Float),
    Column("energy_export_wh", Float),
    Column("soc_pct", Float),
)

reported_profiles = Table(
    "reported_profiles",
    metadata,
    Column("station_id", String(48), primary_key=True),
    Column("evse_id", Integer, primary_key=True, autoincrement=False),
    Column("profile_id", Integer, primary_key=True, autoincrement=False),
    Column("source", String(32), nullable=False),
    Column("purpose", String(40)),
    Column("stack_level", Integer),
    Column("profile", JSON, nullable=False),
    Column("reported_at", UtcDateTime, nullable=False),
)

command_log = Table(
    "command_log",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("station_id", String(48), nullable=False, index=True),
    Column("action", String(48), nullable=False),
    Column("request", JSON, nullable=False),
    Column("status", String(32)),
    Column("reason", Text),
    Column("error", Text),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("latency_s", Float),
)

security_events = Table(
    "security_events",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("station_id", String(48), nullable=False, index=True),
    Column("event_type", String(50), nullable=False),
    Column("tech_info", Text),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)


#: Rows the write-behind could not store (a batch the database refused was split until the
#: refused rows were isolated): the row as JSON text, which table it was for and why.
write_quarantine = Table(
    "write_quarantine",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("table_name", String(64), nullable=False),
    Column("row_json", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("quarantined_at", UtcDateTime, nullable=False, index=True),
)

#: The tables migration 1 created (pinned: later migrations add theirs).
_V1_TABLES = (
    stations,
    station_state,
    evse_state,
    sessions,
    session_samples,
    reported_profiles,
    command_log,
    security_events,
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(_V1_TABLES))


def _v2(conn: Connection) -> None:
    write_quarantine.create(conn)


# -- migration 3: durable dispatches (vpp_core.fleet.dispatch_journal) -----------------------

#: One row per dispatch: the request, its first plan and operator events as JSON; ``closed``
#: is false until nothing it sent can still act on a station (read back on every start).
dispatches = Table(
    "dispatches",
    metadata,
    Column("dispatch_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("closed", Boolean, nullable=False, index=True),
    Column("request", JSON, nullable=False),
    Column("initial_plan", JSON),
    Column("events", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("replans", JSON),  # migration 7: ISO times of the re-plans (NULL before it)
)

#: Each session's part in a dispatch (the report's inputs as JSON) and the profile sent to it:
#: ``profile_id`` is set before the profile is sent, so a crash never hides one.
dispatch_sessions = Table(
    "dispatch_sessions",
    metadata,
    Column("dispatch_id", String(64), primary_key=True),
    Column("station_id", String(48), primary_key=True),
    Column("evse_id", Integer, primary_key=True, autoincrement=False),
    Column("transaction_id", String(36), primary_key=True),
    Column("profile_id", Integer),
    Column("stack_level", Integer),
    Column("valid_from", UtcDateTime),
    Column("valid_to", UtcDateTime),
    Column("record", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: The control intervals of a dispatch (``vpp_core.dispatch.ledger.IntervalRecord``).
dispatch_intervals = Table(
    "dispatch_intervals",
    metadata,
    Column("dispatch_id", String(64), primary_key=True),
    Column("t_start", UtcDateTime, primary_key=True),
    Column("t_end", UtcDateTime, nullable=False),
    Column("target_w", Float, nullable=False),
    Column("committed_w", Float, nullable=False),
    Column("planned_w", Float, nullable=False),
    Column("dropout_w", Float, nullable=False),
    Column("delivered_w", Float, nullable=False),
    Column("available_w", Float, nullable=False),
    Column("deployable_w", Float, nullable=False),
)

_V3_TABLES = (dispatches, dispatch_sessions, dispatch_intervals)


def _v3(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(_V3_TABLES))


_V4_SESSION_COLUMNS = ("requested_energy_transfer", "allowed_energy_transfer", "priority_charging")


def _add_columns(conn: Connection, table: Table, names: tuple[str, ...]) -> None:
    """Add the Table's columns an older database lacks (a fresh database's earlier migration
    created them already from the current Table)."""
    present = {c["name"] for c in inspect(conn).get_columns(table.name)}
    for name in names:
        if name not in present:
            kind = table.c[name].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))


def _v4(conn: Connection) -> None:
    _add_columns(conn, sessions, _V4_SESSION_COLUMNS)


# -- migration 5: what the CSMS keeps to run real equipment (vpp_core.fleet.equipment) --------

id_tokens = Table(
    "id_tokens",
    metadata,
    Column("id_token", String(255), primary_key=True),
    Column("token_type", String(20), primary_key=True),
    Column("status", String(20), nullable=False),  # Accepted, Blocked, Expired, Invalid
    Column("group_id", String(255)),
    Column("expires_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    # Raised on every change (time.time_ns()): a running core re-reads changed rows (and a few
    # minutes before: vpp_core.csms.equipment.LOOKBACK_NS).
    Column("revision", BigInteger, nullable=False, index=True),
)

station_certificates = Table(
    "station_certificates",
    metadata,
    Column("serial", String(64), primary_key=True),  # lower-case hex, no leading zeros
    Column("station_id", String(48), nullable=False, index=True),
    Column("not_after", UtcDateTime),
    Column("issued_at", UtcDateTime),  # null: not issued by this CSMS (revoked by hand)
    Column("first_used_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("revocation_reason", String(64)),
    Column("revision", BigInteger, nullable=False, index=True),
)

device_variables = Table(
    "device_variables",
    metadata,
    Column("station_id", String(48), primary_key=True),
    Column("component", String(50), primary_key=True),
    Column("component_instance", String(50), primary_key=True),  # "" when none
    Column("evse_id", Integer, primary_key=True, autoincrement=False),  # -1 when none
    Column("connector_id", Integer, primary_key=True, autoincrement=False),  # -1 when none
    Column("variable", String(50), primary_key=True),
    Column("variable_instance", String(50), primary_key=True),  # "" when none
    Column("attribute_type", String(16), primary_key=True),
    Column("value", Text),
    Column("mutability", String(16)),
    Column("data_type", String(16)),
    Column("unit", String(16)),
    Column("reported_at", UtcDateTime, nullable=False),
)

_V5_TABLES = (id_tokens, station_certificates, device_variables)


def _v5(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(_V5_TABLES))


#: Dispatch reports stored until the broker acknowledged them (``vpp_core.report_outbox``):
#: one a dispatch (its topic), kept across restarts, deleted on PUBACK.
report_outbox = Table(
    "report_outbox",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("payload", Text, nullable=False),
    Column("stored_at", UtcDateTime, nullable=False),
)


def _v6(conn: Connection) -> None:
    metadata.create_all(conn, tables=[report_outbox])


def _v7(conn: Connection) -> None:
    _add_columns(conn, dispatches, ("replans",))


# -- migration 8: durable frequency services (vpp_core.fleet.service_journal) ---------------

#: One row per frequency service: its request and everything else it holds as JSON
#: (``vpp_core.services.journal_codec``: plan, the stations' answers, events, the report's
#: inputs). ``closed`` once it is over (read back on every start: the open ones are resumed).
frequency_services = Table(
    "frequency_services",
    metadata,
    Column("service_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("closed", Boolean, nullable=False, index=True),
    Column("request", JSON, nullable=False),
    Column("state", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False, index=True),
)


def _v8(conn: Connection) -> None:
    frequency_services.create(conn)


#: (version, what it does, the change) in order; never edit a released entry.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "stations, live state, sessions, samples, profiles, commands, security events", _v1),
    (2, "write_quarantine: rows the write-behind could not store, with the reason", _v2),
    (3, "dispatches, their sessions, profiles sent and intervals (durable dispatches)", _v3),
    (4, "sessions: requested/allowed energy transfer modes, priority charging", _v4),
    (5, "idToken list, station certificates (issued, revoked), device models", _v5),
    (6, "report_outbox: dispatch reports not yet acknowledged by the MQTT broker", _v6),
    (7, "dispatches: the re-plan times (a restarted core's reports mark them)", _v7),
    (8, "frequency_services: durable frequency services and their reports' inputs", _v8),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
