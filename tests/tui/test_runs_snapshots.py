"""Snapshots of the Runs panel at 80x24 and 120x40, on a deterministic store (fixed ids, dates,
figures; UTC): two runs selected, their validation curves overlaid.

Regenerate after a deliberate visual change:
    pytest tests/tui/test_runs_snapshots.py --snapshot-update
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from tests.tui.conftest import press, settle, wait_for
from tests.tui.runs_fixture import RUNS, fill
from tui.app import TermnistApp


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def app(sample, utc) -> TermnistApp:
    fill(Path(os.environ["TERMNIST_STATE_DIR"]) / "runs.sqlite")
    bundled = dataclasses.replace(sample, is_sample=True, source="bundled sample")
    return TermnistApp(load_dataset_fn=lambda name, data_dir: bundled, remember=False)


async def show_runs(pilot) -> None:
    app = pilot.app
    await settle(pilot)
    while app.panel != "runs":
        before = app.panel
        await press(pilot, "f3")
        await wait_for(pilot, lambda before=before: app.panel != before, what="the next panel")
    panel = app.runs_panel
    await wait_for(pilot, lambda: panel.loaded and panel.table.has_focus, what="the runs table")
    for run_id in (RUNS[0]["id"], RUNS[2]["id"]):
        panel.table.move_cursor(row=[r.id for r in panel.shown].index(run_id), animate=False)
        await pilot.pause()
        await press(pilot, "space")
    await wait_for(pilot, lambda: len(panel.chart.drawn_labels) == 2, what="two curves")
    await settle(pilot)
    for field in app.query(Input):
        field.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


def test_runs_panel_80x24(snap_compare, app):
    assert snap_compare(app, terminal_size=(80, 24), run_before=show_runs)


def test_runs_panel_120x40(snap_compare, app):
    assert snap_compare(app, terminal_size=(120, 40), run_before=show_runs)
