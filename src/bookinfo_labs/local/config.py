"""The local mesh's config store: what istiod would hold, read by every sidecar.

An apply replaces the whole mapping in one assignment, so a sidecar on the loop thread sees
either all of a manifest file or none of it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable

from ..manifests import Manifest
from ..mesh import ResourceKey


@dataclass(frozen=True)
class Entry:
    key: ResourceKey
    manifest: Manifest
    created: int  # creation order: Istio uses the oldest VirtualService for a host

    @property
    def spec(self):
        return self.manifest.model.spec


class ConfigStore:
    def __init__(self) -> None:
        self._entries: dict[ResourceKey, Entry] = {}
        self._sequence = itertools.count()

    def apply(self, items: Iterable[tuple[ResourceKey, Manifest]]) -> None:
        entries = dict(self._entries)
        for key, manifest in items:
            # Re-applying an object ("configured") keeps its creation time, as on a cluster.
            created = entries[key].created if key in entries else next(self._sequence)
            entries[key] = Entry(key, manifest, created)
        self._entries = entries

    def delete(self, keys: Iterable[ResourceKey]) -> None:
        entries = dict(self._entries)
        for key in keys:
            entries.pop(key, None)
        self._entries = entries

    def snapshot(self) -> dict[ResourceKey, Entry]:
        """Everything applied now, to put back with ``restore`` (an apply Envoy rejected)."""
        return dict(self._entries)

    def restore(self, entries: dict[ResourceKey, Entry]) -> None:
        self._entries = dict(entries)

    def keys(self) -> set[ResourceKey]:
        return set(self._entries)

    def get(self, key: ResourceKey) -> Entry | None:
        return self._entries.get(key)

    def of_kind(self, kind: str) -> list[Entry]:
        return sorted((e for e in self._entries.values() if e.key.kind == kind),
                      key=lambda e: e.created)
