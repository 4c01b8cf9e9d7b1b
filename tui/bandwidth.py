"""Redraw rates, and the low-bandwidth setting for slow links.

``TERMNIST_LOW_BANDWIDTH=1`` (or ``termnist --low-bandwidth``) redraws the chart and the
progress line once a second instead of 4-5 times: measured 18.4 -> 5.4 KiB/s written to an
80x24 terminal while training (python -m benchmarks app).
"""

from __future__ import annotations

import os

ENV = "TERMNIST_LOW_BANDWIDTH"


def low_bandwidth() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "no", "false", "off")


def chart_interval() -> float:
    """Seconds between chart redraw checks (a redraw happens only when data changed)."""
    return 1.0 if low_bandwidth() else 0.25


def progress_interval() -> float:
    """Seconds between progress updates (progress bar, ETA, loss points) from the worker."""
    return 1.0 if low_bandwidth() else 0.2
