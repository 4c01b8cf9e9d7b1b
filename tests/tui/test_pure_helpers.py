"""Settings file, chart series, caption and log-row formatting: pure helpers."""

from __future__ import annotations

import json
import math

import pytest

from tui import settings
from tui.widgets.chart_data import ChartData, DecimatingSeries, ema, thin
from tui.widgets.digit_preview import caption
from tui.widgets.epoch_log import HEADER, format_duration, format_epoch_row

DIGITS = tuple(str(i) for i in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


# -- settings -----------------------------------------------------------------------------
def test_settings_round_trip(tmp_path):
    data = {"form": {"lr": "0.1", "hidden": "64"}, "ui": {"chart": "accuracy"}, "base": {"lr": 0.1}}
    path = settings.save_settings(data, tmp_path)
    assert path == tmp_path / "settings.json"
    loaded = settings.load_settings(tmp_path)
    assert loaded["form"] == data["form"] and loaded["ui"] == data["ui"] and loaded["base"] == {"lr": 0.1}
    assert not list(tmp_path.glob(".settings.*"))   # no temporary file left behind


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"form": 3}', "", "\xff\xfe"])
def test_corrupt_settings_read_as_empty(tmp_path, content):
    (tmp_path / "settings.json").write_text(content, encoding="latin-1")
    loaded = settings.load_settings(tmp_path)
    assert loaded.get("form", {}) == {}


def test_missing_settings_and_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_VAR, str(tmp_path / "cfg"))
    assert settings.config_dir() == tmp_path / "cfg"
    assert settings.load_settings() == {}
    settings.save_settings({"form": {"seed": "1"}})
    assert json.loads((tmp_path / "cfg" / "settings.json").read_text())["form"] == {"seed": "1"}


# -- chart data -----------------------------------------------------------------------------
def test_decimating_series_keeps_memory_bounded_and_mean_preserved():
    s = DecimatingSeries(capacity=64)
    for i in range(100_000):
        s.append(float(i), 1.0)
    assert len(s.xs) <= 64
    xs, ys = s.points()
    assert all(y == 1.0 for y in ys)
    assert xs == sorted(xs) and xs[-1] > 99_000


def test_thin_and_ema():
    xs, ys = thin(list(range(1000)), [1.0] * 1000, 100)
    assert len(xs) == 100 and ys == [1.0] * 100
    assert thin([1, 2], [3, 4], 10) == ([1, 2], [3, 4])
    assert ema([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])   # bias-corrected
    assert math.isnan(ema([1.0, float("nan"), 1.0])[1])


def test_chart_data_series():
    data = ChartData()
    assert data.empty
    data.add_steps([(1, 2.0), (2, 1.0)], steps_per_epoch=2)
    data.add_epoch(1, 0.5, 0.8, 0.6)
    loss = data.loss_series(100, smoothing=0.0)
    assert loss["train"] == ([0.5, 1.0], [2.0, 1.0])        # x in epochs
    assert loss["val"] == ([1.0], [0.8])
    acc = data.accuracy_series(100)
    assert acc["train"] == ([1.0], [50.0]) and acc["val"] == ([1.0], [60.0])
    v = data.version
    data.clear()
    assert data.empty and data.version > v


# -- captions and log rows ----------------------------------------------------------------
def test_digit_captions():
    assert caption(7, 0.99, 7, DIGITS) == (["  7  99% (7)"], False)
    assert caption(2, 0.61, 7, DIGITS) == (["X 2  61% (7)"], True)
    assert caption(None, None, 4, DIGITS) == (["  ?     (4)"], False)
    assert caption(1, 1.0, 1, DIGITS)[0][0] == "  1  99% (1)"    # never claims 100%
    for lines, _ in (caption(p, 0.5, 3, DIGITS) for p in range(10)):
        assert all(len(line) <= 14 and line.isascii() for line in lines)


def test_fashion_captions_use_class_names_on_two_lines():
    lines, wrong = caption(5, 0.61, 7, FASHION)
    assert wrong and lines == ["X Sandal 61%", "(Sneaker)"]
    lines, wrong = caption(9, 0.9, 9, FASHION)
    assert not wrong and lines[0].startswith("  Ankle b") and len(lines[0]) <= 14


def test_epoch_row_lines_up_with_header():
    row = format_epoch_row(3, 10, 0.1234, 0.9612, 0.1456, 0.955, 12.3, 4567.8)
    assert len(row) == len(HEADER)
    assert row.split() == ["3/10", "0.1234", "96.12%", "0.1456", "95.50%", "12.3", "4,568"]
    no_val = format_epoch_row(1, 1, 0.5, 0.5, None, None, 1.0, float("inf"))
    assert no_val.split()[3:5] == ["-", "-"] and no_val.split()[-1] == "-"


def test_format_duration():
    assert format_duration(None) == "--:--"
    assert format_duration(5) == "0:05"
    assert format_duration(3725) == "1:02:05"


def test_steps_change_only_the_loss_view_epochs_both():
    """The accuracy chart is not redrawn for every batch: only epochs change what it shows."""
    data = ChartData()
    loss, acc = data.version_of("loss"), data.version_of("accuracy")
    data.add_steps([(1, 2.0), (2, 1.5)], steps_per_epoch=10)
    assert data.version_of("loss") > loss and data.version_of("accuracy") == acc
    data.add_epoch(1, train_acc=0.5, val_loss=1.0, val_acc=0.6)
    assert data.version_of("accuracy") > acc
