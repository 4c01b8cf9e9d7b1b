"""A workaround for Textual 8.2's Footer (kept out of the app: it reaches into a private)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


def prune_footer_watchers(app: Any) -> None:
    """Each Footer recompose data-binds its new keys to the Footer's ``compact`` reactive,
    whose watcher list drops removed keys only when ``compact`` changes -- never, here. Every
    binding refresh would keep ~8 dead widgets alive: a long session grew by ~0.6 MB per run.
    Drop the closed ones."""
    try:
        for footer in app.query(Footer):
            for watchers in getattr(footer, "__watchers", {}).values():
                watchers[:] = [(node, cb) for node, cb in watchers if not getattr(node, "_closing", False)]
    except Exception:  # noqa: BLE001 - a private detail of Textual: never let it break the app
        pass
