"""A SessionLink that records what a venue session reports (for parsing tests)."""

from __future__ import annotations

from streams.feeds.session import Overlap


class RecordingLink:
    """Stands in for the feed engine's side of one connection; remembers every report."""

    serial = 1

    def __init__(self, overlap: Overlap | None = None) -> None:
        self.overlap = overlap
        self.subscribed_calls = 0
        self.gaps: list[int] = []
        self.drops: list[str] = []
        self.refusals: list[str] = []
        self.replacements: list[str] = []

    def subscribed(self) -> None:
        self.subscribed_calls += 1

    def gap(self, missed: int) -> None:
        self.gaps.append(missed)

    def drop(self, reason: str, raw: bytes) -> None:
        self.drops.append(reason)

    def refused(self, message: str) -> None:
        self.refusals.append(message)

    def replace_soon(self, reason: str) -> None:
        self.replacements.append(reason)
