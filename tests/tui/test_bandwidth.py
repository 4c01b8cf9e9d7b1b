"""The low-bandwidth setting slows the chart and progress redraws."""

from __future__ import annotations

from tui.bandwidth import chart_interval, low_bandwidth, progress_interval
from tui.runner import TrainingRunner


def test_default_rates(monkeypatch):
    monkeypatch.delenv("TERMNIST_LOW_BANDWIDTH", raising=False)
    assert not low_bandwidth()
    assert chart_interval() == 0.25 and progress_interval() == 0.2
    assert TrainingRunner(post=lambda u: None).throttle_s == 0.2


def test_low_bandwidth_rates(monkeypatch):
    monkeypatch.setenv("TERMNIST_LOW_BANDWIDTH", "1")
    assert low_bandwidth()
    assert chart_interval() == 1.0 and progress_interval() == 1.0
    assert TrainingRunner(post=lambda u: None).throttle_s == 1.0
    monkeypatch.setenv("TERMNIST_LOW_BANDWIDTH", "0")
    assert not low_bandwidth()
