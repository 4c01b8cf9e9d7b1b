"""Textual pieces drawn with ASCII only, for terminals whose locale cannot show Unicode
(tui.terminal decides; widgets ask ``ascii_only(self)``)."""

from __future__ import annotations

from textual.dom import DOMNode
from textual.renderables.bar import Bar as BarRenderable
from textual.scrollbar import ScrollBarRender
from textual.widget import Widget
from textual.widgets import ProgressBar, Static


class AsciiBarRenderable(BarRenderable):
    """A progress bar as ``=====-    `` instead of heavy box-drawing lines."""

    HALF_BAR_LEFT = "-"
    BAR = "="
    HALF_BAR_RIGHT = "-"


class AsciiProgressBar(ProgressBar):
    BAR_RENDERABLE = AsciiBarRenderable


class AsciiScrollBarRender(ScrollBarRender):
    """A scrollbar thumb of whole cells: Textual draws its ends with eighth blocks."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8


def ascii_scrollbars(*widgets: Widget) -> None:
    """Draw these widgets' scrollbars without block characters."""
    for widget in widgets:
        # per instance, as textual.scrollbar's docs show (the ClassVar would change every app)
        widget.vertical_scrollbar.renderer = AsciiScrollBarRender  # type: ignore[misc]
        widget.horizontal_scrollbar.renderer = AsciiScrollBarRender  # type: ignore[misc]


def ascii_select_arrows(root: DOMNode) -> None:
    """Select widgets under ``root`` show ``v`` / ``^`` instead of ▼ / ▲."""
    for arrow in root.query(".down-arrow").results(Static):
        arrow.update("v")
    for arrow in root.query(".up-arrow").results(Static):
        arrow.update("^")
