"""Activation files on request (issue 19): a requester with the core's certificate asks a
site's gateway for one of its 100 ms activation files (or a window of it) and the gateway
publishes it in parts. Shared by the gateway that answers and whoever asks.

```
vpp/v1/region/{region}/site/{site}/activation/request   core -> gateway  FileRequest
vpp/v1/region/{region}/site/{site}/activation/file      gateway -> core  FilePart, 1..n
```

Both sit one level below the site's telemetry (so the core's ingest filter ``.../site/+/+``
does not see them); the broker's ACL lets a site read only its own requests and write only
its own files, and the core write requests and read files. A request names a ``request_id``
(echoed in every part), optionally the ``file`` (default: the latest activation) and a window
``from_s``/``to_s`` (seconds from the activation's start, ``t_s`` of the file). The answer is
``parts`` messages, each with the CSV header and at most :data:`MAX_PART_CSV_BYTES` of rows
(the production broker's ``max_packet_size`` is 64 KiB), or one ``rejected`` part with the
``reason`` (a request that is not JSON, breaks the schema, names no activation file, ...).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from v2g_common.telemetry.errors import PayloadError
from v2g_common.telemetry.topics import TOPIC_ROOT, check_segment

__all__ = [
    "ACTIVATION_FILE_FILTER",
    "FILE_SCHEMA",
    "MAX_PART_CSV_BYTES",
    "REQUEST_SCHEMA",
    "FilePart",
    "FileRequest",
    "activation_file_topic",
    "activation_request_topic",
    "file_parts",
    "join_parts",
    "parse_request",
    "rejection",
    "request_id_of",
]

REQUEST_SCHEMA: Final = "vpp.site.activation-request/1"
FILE_SCHEMA: Final = "vpp.site.activation-file/1"
MAX_PART_CSV_BYTES = 40_000
#: What the requester subscribes to: every site's activation files.
ACTIVATION_FILE_FILTER = f"{TOPIC_ROOT}/region/+/site/+/activation/file"
#: An activation file's name as the gateway writes it (no directory, no other file).
FILE_NAME = re.compile(r"^activation-[0-9]{8}T[0-9]{6}\.[0-9]{6}Z\.csv$")


def activation_request_topic(region: str, site: str) -> str:
    return _topic(region, site, "request")


def activation_file_topic(region: str, site: str) -> str:
    return _topic(region, site, "file")


def _topic(region: str, site: str, leaf: str) -> str:
    region = check_segment(region, what="region")
    site = check_segment(site, what="site")
    return f"{TOPIC_ROOT}/region/{region}/site/{site}/activation/{leaf}"


RequestId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


class FileRequest(BaseModel):
    """Which activation file, and which window of it (seconds from its start)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_id: Literal["vpp.site.activation-request/1"] = Field(
        default=REQUEST_SCHEMA, validation_alias="schema", serialization_alias="schema"
    )
    request_id: RequestId
    file: str | None = Field(default=None, description="default: the latest activation")
    from_s: float | None = None
    to_s: float | None = None

    @field_validator("file")
    @classmethod
    def _file_name(cls, value: str | None) -> str | None:
        if value is not None and not FILE_NAME.match(value):
            raise ValueError("must be an activation file's name: activation-<UTC>.csv")
        return value

    @field_validator("from_s", "to_s")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be finite")
        return value

    def model_post_init(self, _context: Any) -> None:
        if self.from_s is not None and self.to_s is not None and self.from_s > self.to_s:
            raise ValueError("from_s is after to_s")


class FilePart(BaseModel):
    """One message of the answer; ``status`` ``rejected`` comes alone, with ``reason``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_id: Literal["vpp.site.activation-file/1"] = Field(
        default=FILE_SCHEMA, validation_alias="schema", serialization_alias="schema"
    )
    request_id: str | None
    site: str
    status: Literal["ok", "rejected"]
    reason: str | None = None
    file: str | None = None
    part: int = 1
    parts: int = 1
    rows: int = 0
    csv: str = ""


def parse_request(payload: bytes) -> FileRequest:
    """The request in ``payload``; :class:`PayloadError` (``json`` / ``fields``) with a detail
    that names what is wrong, and ``request_id`` when one could be read."""
    try:
        return FileRequest.model_validate_json(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "request"
        kind = "json" if error["type"] == "json_invalid" else "fields"
        raise PayloadError(kind, f"{where}: {error['msg']}") from None


def request_id_of(payload: bytes) -> str | None:
    """The ``request_id`` of a request that failed to parse, when one can be read (so the
    rejection reaches whoever asked)."""
    try:
        value = json.loads(payload).get("request_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def rejection(request_id: str | None, site: str, reason: str) -> bytes:
    part = FilePart(request_id=request_id, site=site, status="rejected", reason=reason[:500])
    return part.model_dump_json(by_alias=True).encode()


def file_parts(
    request_id: str, site: str, file: str, header: str, rows: Sequence[str]
) -> list[bytes]:
    """``rows`` (CSV lines, no newline) in parts of at most :data:`MAX_PART_CSV_BYTES` each,
    every part with ``header``; one part (of no rows) when there are none."""
    chunks: list[list[str]] = [[]]
    size = 0
    for row in rows:
        if chunks[-1] and size + len(row) + 1 > MAX_PART_CSV_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += len(row) + 1
    return [
        FilePart(
            request_id=request_id, site=site, status="ok", file=file, part=i, parts=len(chunks),
            rows=len(chunk), csv="\n".join([header, *chunk]) + "\n",
        ).model_dump_json(by_alias=True).encode()
        for i, chunk in enumerate(chunks, start=1)
    ]  # fmt: skip


def join_parts(parts: Sequence[FilePart]) -> str:
    """The CSV of a complete answer (header once); ``ValueError`` if parts are missing."""
    ordered = sorted(parts, key=lambda p: p.part)
    if not ordered or [p.part for p in ordered] != list(range(1, ordered[0].parts + 1)):
        raise ValueError("the answer is incomplete")
    header, *_ = ordered[0].csv.split("\n", 1)
    body = "".join(p.csv.split("\n", 1)[1] for p in ordered)
    return f"{header}\n{body}"
