"""Plain text of what a Pilot-driven app shows (for assertions and debugging)."""

from __future__ import annotations

from textual.app import App


def screen_text(app: App) -> str:
    """The current screen as lines of plain text (styles dropped)."""
    strips = app.screen._compositor.render_strips()  # noqa: SLF001 - test helper
    return "\n".join("".join(seg.text for seg in strip).rstrip() for strip in strips)
