"""docs/ocpp-conformance.md stays true to the tests: every test file it names exists, every
``::test_name`` it cites is a test in that file, and every coverage label used in a table is
defined in "Where the tests are" and points at files that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ocpp-conformance.md"
#: `tests/...py` or `…/name.py` (a file named earlier in the same cell), then `::test` parts.
_REFERENCE = re.compile(r"`((?:tests/|…/)[\w/]+\.py)((?:::\w+)*)`|`::(\w+)`")
_LABEL_ROW = re.compile(r"^\| ([A-Z0-9]+-[A-Z0-9-]+) \| (.+) \|$")
_LABEL_USE = re.compile(r"\b([SCE]2?E?-[A-Z][A-Z0-9-]*)\b")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _files_by_name() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        found.setdefault(path.name, []).append(path)
    return found


def _problems_in(cell: str, files: dict[str, list[Path]]) -> list[str]:
    """Unresolvable references in one table cell (``…/x.py`` and bare ``::name`` refer to the
    last file named before them in the cell)."""
    problems: list[str] = []
    current: Path | None = None
    for match in _REFERENCE.finditer(cell):
        named, parts, bare = match.groups()
        if named is not None:
            if named.startswith("…/"):
                candidates = files.get(Path(named).name, [])
                current = candidates[0] if len(candidates) == 1 else None
            else:
                current = ROOT / named if (ROOT / named).exists() else None
            if current is None:
                problems.append(f"no test file {named}")
                continue
            names = [p for p in parts.split("::") if p]
        else:
            names = [bare]
        if current is None:
            problems.append(f"::{bare} with no file before it")
            continue
        defined = _tests_in(current)
        problems += [f"{current.name} has no {n}" for n in names if n not in defined]
    return problems


def _labels(lines: list[str]) -> dict[str, str]:
    return {m.group(1): m.group(2) for line in lines if (m := _LABEL_ROW.match(line))}


def test_every_reference_resolves() -> None:
    files = _files_by_name()
    problems = [
        f"line {number}: {problem}"
        for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1)
        for problem in _problems_in(line, files)
    ]
    assert problems == []


def test_every_label_used_is_defined() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    labels = _labels(lines)
    assert len(labels) > 10
    used = {
        label for line in lines if line.startswith("| TC_") for label in _LABEL_USE.findall(line)
    }
    assert used - set(labels) == set()


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("`tests/unit/no_such_test.py`", "no test file"),
        ("`tests/unit/test_conformance_map.py::test_nothing_here`", "has no test_nothing_here"),
        ("`…/test_conformance_map.py::test_every_label_used_is_defined`, `::nope`", "has no nope"),
        ("`::orphan`", "no file before it"),
    ],
)
def test_the_checks_find_what_is_wrong(cell: str, problem: str) -> None:
    [found] = _problems_in(cell, _files_by_name())
    assert problem in found
