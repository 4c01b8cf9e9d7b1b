"""A footer drawn as one line of text: the keys that can act now on this screen.

Textual's Footer recomposes a widget per key at every focus change; on a screen whose focus
moves with every tab switch (the Insight screen) that restyling cost more than the view itself
(~0.4 s on a busy 2-core machine). This widget renders the same list -- the screen's active
bindings with ``show``, grouped by action as Footer groups them, key names as the app spells
them (``App.get_key_display``: ASCII names on an ASCII-only terminal) -- as one Text.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import RenderResult
from textual.widget import Widget


class KeyLine(Widget):
    DEFAULT_CSS = """
    KeyLine { height: 1; dock: bottom; background: $footer-background; color: $footer-foreground; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _changed(self, screen: Any) -> None:
        self.refresh()

    def keys(self) -> list[tuple[str, str, bool]]:
        """(key shown, description, enabled) of each action, in the screen's binding order."""
        seen: dict[str, tuple[str, str, bool]] = {}
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.show or binding.action in seen:
                continue
            seen[binding.action] = (self.app.get_key_display(binding), binding.description, active.enabled)
        return list(seen.values())

    def render(self) -> RenderResult:
        out = Text(no_wrap=True, overflow="crop")
        for key, description, enabled in self.keys():
            if not enabled:
                continue
            out.append(key, style="bold")
            out.append(f" {description} ")
        return out
