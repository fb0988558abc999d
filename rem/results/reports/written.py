"""What a report command wrote, and the warnings it leaves to its caller to print."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rem.results.protocols.records import ProtocolWarning


@dataclass
class Written:
    """The files a report wrote and its warnings (protocol mismatches, left-out inputs), in
    the order they arose; the command prints them (rem.results.protocols.warnings_text)."""

    files: list[Path] = field(default_factory=list)
    warnings: list[ProtocolWarning | str] = field(default_factory=list)

    def __iadd__(self, other: Written) -> Written:
        self.files += other.files
        self.warnings += other.warnings
        return self
