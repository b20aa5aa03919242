"""ISO 15118 EV link of the V2G gateway (docs/iso15118.md).

Two sides that never share a virtualenv: ``secc`` and ``evcc`` run on the iso15118 library in
``.venv-iso15118`` (pydantic 1); ``link`` runs in the gateway and supervises the SECC process.
They meet only in ``wire`` (the JSON-lines protocol) and ``mapping`` (the numbers, both ways),
which are the standard library only.
"""
