"""JSON-lines files (a run's metrics.jsonl): one reader, one rule for a half-written line.

A writer appends one JSON object and its newline per line. A reader may meet the file while
a line is being appended, or after a kill in the middle of one: so the file's last line,
when it does not parse, is an unfinished write and is skipped. Any earlier line that is not
a JSON object cannot come from an unfinished write: it is an error naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JsonlError(ValueError):
    """A line of a JSON-lines file, not its last one, that is not a JSON object."""

    def __init__(self, path: str | Path, line: int) -> None:
        super().__init__(
            f"{path}:{line}: not a JSON object, and only the last line of a JSON-lines file "
            "can be an unfinished write; repair or delete that line"
        )
        self.path, self.line = Path(path), line


def parse_line(line: str | bytes) -> dict[str, Any] | None:
    """The JSON object of one line; None when the line is not one."""
    try:
        record = json.loads(line)
    except ValueError:  # also a UnicodeDecodeError of torn bytes
        return None
    return record if isinstance(record, dict) else None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every line's object in file order; an unparseable last line is skipped, any earlier
    one raises JsonlError. A missing file raises FileNotFoundError."""
    lines = Path(path).read_bytes().splitlines()
    records = []
    for i, line in enumerate(lines):
        record = parse_line(line)
        if record is None:
            if i == len(lines) - 1:
                break  # unfinished write
            raise JsonlError(path, i + 1)
        records.append(record)
    return records
