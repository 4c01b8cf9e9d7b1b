"""The app's loaded dataset and where datasets come from (no Textual)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Loader = Callable[[str, "str | None"], Any]


class DatasetCache:
    """Loads datasets by name from ``data_dir`` (or the engine's search), keeping one.

    Thread-safe. ``get`` blocks while it loads: call it from a worker. One load runs at a
    time: a second request for the same set waits, then finds it in the cache. Datasets are
    read-only once loaded.
    """

    def __init__(self, data_dir: str | None = None, loader: Loader | None = None) -> None:
        self.data_dir = data_dir
        self._loader = loader
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()          # the cache dict
        self._loading = threading.Lock()       # one load at a time

    @property
    def uses_engine_search(self) -> bool:
        """True when datasets come from engine.datasets' search (not an injected loader), so
        "where it looked" and "found or not" can be asked of the engine."""
        return self._loader is None

    def cached(self, name: str) -> Any:
        with self._lock:
            return self._cache.get(name)

    def get(self, name: str) -> Any:
        """The dataset ``name``, loading it now if needed (a worker thread)."""
        cached = self.cached(name)
        if cached is not None:
            return cached
        with self._loading:
            cached = self.cached(name)
            if cached is not None:
                return cached
            if self._loader is not None:
                ds = self._loader(name, self.data_dir)
            else:
                from engine.datasets import load_dataset

                ds = load_dataset(name, self.data_dir)
            with self._lock:
                self._cache = {name: ds}     # keep one: datasets can be large
        return ds

    def drop(self) -> None:
        """Forget every loaded dataset (after any load in flight, so the cache never keeps a
        set from an old place)."""
        with self._loading, self._lock:
            self._cache = {}

    def use_data_dir(self, path: str | None) -> None:
        """Load from ``path`` from now on (None: the engine's search)."""
        with self._loading, self._lock:
            self.data_dir = path
            self._cache = {}
