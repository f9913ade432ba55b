"""The local authorisation list a CSMS manages with SendLocalList / GetLocalListVersion."""

from __future__ import annotations

from typing import Any

__all__ = ["LocalList"]


class LocalList:
    """Versioned idTag → idTagInfo entries; created only when a CSMS first touches it."""

    __slots__ = ("entries", "version")

    def __init__(self) -> None:
        self.version = 0
        self.entries: dict[str, dict[str, Any]] = {}

    def update(self, version: int, full: bool, entries: list[dict[str, Any]]) -> str:
        """Apply a SendLocalList; returns its UpdateStatus."""
        if not full and version <= self.version:
            return "VersionMismatch"
        if full:
            self.entries = {}
        for entry in entries:
            info = entry.get("idTagInfo")
            if info is None:
                self.entries.pop(entry["idTag"], None)
            else:
                self.entries[entry["idTag"]] = info
        self.version = version
        return "Accepted"
