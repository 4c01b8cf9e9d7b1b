"""A minimal host for one insight view (the tui.insight contract without the Insight screen):
mount the widget, then unavailable -> compute (in a thread, as the screen does) -> show."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Footer

from tui.insight import ModelInput


class ViewHost(App):
    """Mounts ``view`` full-screen under a footer; ``messages`` keeps what the view posted."""

    CSS = "Screen { layout: vertical; }"

    def __init__(self, view: Any, inp: ModelInput | None = None) -> None:
        super().__init__()
        self.view = view
        self.inp = inp
        self.messages: list[Any] = []
        self.reason: str | None = None

    def compose(self) -> ComposeResult:
        yield self.view
        yield Footer()

    def on_mount(self) -> None:
        self.view.focus()

    def on_apply_fix(self, message: Any) -> None:   # tui.insight.health.ApplyFix, as it bubbles up
        self.messages.append(message)

    async def feed(self, inp: ModelInput | None = None) -> Any:
        """What the Insight screen does with a new ModelInput; returns the computed result."""
        inp = inp or self.inp
        assert inp is not None
        self.reason = self.view.unavailable(inp)
        if self.reason is not None:
            return None
        result = await asyncio.to_thread(self.view.compute, inp)
        self.view.show(result)
        return result


def train_small(dataset: Any, hidden: tuple[int, ...] = (32, 16), epochs: int = 1, **settings: Any) -> tuple[Any, list]:
    """A small model trained briefly on ``dataset`` (seeded, one BLAS thread: the same every
    time on a machine) and its history."""
    from threadpoolctl import threadpool_limits

    from engine.training import TrainConfig, TrainingSession

    cfg = TrainConfig(**{"hidden": hidden, "epochs": epochs, "val_size": 500, "lr": 0.1, "seed": 0, **settings})
    with threadpool_limits(limits=1, user_api="blas"):
        session = TrainingSession(cfg, dataset)
        for _ in session.run():
            pass
    return session.checkpoint().model, list(session.history)
