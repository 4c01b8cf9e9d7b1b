"""Chart series with bounded memory, smoothing and decimation. Pure Python; no Textual.

A run of 100 epochs x 1000 steps makes 100k loss points. `DecimatingSeries` keeps at
most ``capacity`` points: when full, neighbours are averaged pairwise and later points
are averaged in buckets twice as large, so memory stays constant and the curve's shape
survives. For drawing, `thin()` averages down to what the chart's width can show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


class DecimatingSeries:
    """(x, y) points, at most ``capacity`` of them, coarser as more arrive."""

    def __init__(self, capacity: int = 2048) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.bucket = 1               # raw points per stored point
        self.xs: list[float] = []
        self.ys: list[float] = []
        self._n = 0                   # raw points in the partial bucket
        self._sx = 0.0
        self._sy = 0.0

    def __len__(self) -> int:
        return len(self.xs) + (1 if self._n else 0)

    def append(self, x: float, y: float) -> None:
        self._n += 1
        self._sx += x
        self._sy += y
        if self._n >= self.bucket:
            self.xs.append(self._sx / self._n)
            self.ys.append(self._sy / self._n)
            self._n, self._sx, self._sy = 0, 0.0, 0.0
            if len(self.xs) > self.capacity:
                self._halve()

    def _halve(self) -> None:
        n = len(self.xs) // 2 * 2
        xs = [(self.xs[i] + self.xs[i + 1]) / 2 for i in range(0, n, 2)]
        ys = [(self.ys[i] + self.ys[i + 1]) / 2 for i in range(0, n, 2)]
        if n < len(self.xs):      # odd one out starts the next (larger) bucket
            self._n, self._sx, self._sy = self.bucket, self.xs[-1] * self.bucket, self.ys[-1] * self.bucket
        self.xs, self.ys = xs, ys
        self.bucket *= 2

    def points(self) -> tuple[list[float], list[float]]:
        """Copies of the stored points, plus the partial bucket's mean."""
        xs, ys = list(self.xs), list(self.ys)
        if self._n:
            xs.append(self._sx / self._n)
            ys.append(self._sy / self._n)
        return xs, ys

    def clear(self) -> None:
        self.__init__(self.capacity)  # type: ignore[misc]


def ema(values: Sequence[float], smoothing: float = 0.8) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard-style).

    ``smoothing`` 0 returns the values; closer to 1 is smoother. Non-finite values are
    passed through without poisoning the average.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError("smoothing must be in [0, 1)")
    out: list[float] = []
    avg = 0.0
    weight = 0.0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        avg = smoothing * avg + (1 - smoothing) * v
        weight = smoothing * weight + (1 - smoothing)
        out.append(avg / weight)
    return out


def thin(xs: Sequence[float], ys: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """At most ``max_points`` points: consecutive points averaged in equal groups."""
    n = len(xs)
    if max_points < 1:
        return [], []
    if n <= max_points:
        return list(xs), list(ys)
    out_x, out_y = [], []
    for k in range(max_points):
        a = k * n // max_points
        b = max((k + 1) * n // max_points, a + 1)
        out_x.append(sum(xs[a:b]) / (b - a))
        out_y.append(sum(ys[a:b]) / (b - a))
    return out_x, out_y


@dataclass
class ChartData:
    """Everything the loss/accuracy chart shows. ``version_of(mode)`` changes whenever what
    that view shows changes (steps move only the loss view; epochs move both)."""

    steps_per_epoch: int = 1
    train_loss: DecimatingSeries = field(default_factory=DecimatingSeries)  # x: global step
    val_loss: DecimatingSeries = field(default_factory=DecimatingSeries)    # x: epoch
    train_acc: DecimatingSeries = field(default_factory=DecimatingSeries)
    val_acc: DecimatingSeries = field(default_factory=DecimatingSeries)
    loss_version: int = 0
    acc_version: int = 0
    marks: list[tuple[int, str]] = field(default_factory=list)   # (global step, label): live changes

    @property
    def version(self) -> int:
        """Changes on every update."""
        return self.loss_version + self.acc_version

    def version_of(self, mode: str) -> int:
        return self.acc_version if mode == "accuracy" else self.loss_version

    def clear(self) -> None:
        for s in (self.train_loss, self.val_loss, self.train_acc, self.val_acc):
            s.clear()
        self.steps_per_epoch = 1
        self.marks = []
        self.loss_version += 1
        self.acc_version += 1

    def add_mark(self, step: int, label: str) -> None:
        """A live change at global step ``step`` (before step + 1): a vertical marker. Changes
        at one step share one marker ("lr 0.1 bs 32")."""
        if self.marks and self.marks[-1][0] == step:
            self.marks[-1] = (step, f"{self.marks[-1][1]} {label}")
        else:
            self.marks.append((step, label))
        self.loss_version += 1
        self.acc_version += 1

    def mark_series(self) -> list[tuple[float, str]]:
        """The markers at their x (epochs, as the loss curve's x)."""
        return [(step / self.steps_per_epoch, label) for step, label in self.marks]

    def add_steps(self, points: Sequence[tuple[int, float]], steps_per_epoch: int) -> None:
        self.steps_per_epoch = max(1, steps_per_epoch)
        for step, loss in points:
            self.train_loss.append(float(step), float(loss))
        self.loss_version += 1

    def add_epoch(self, epoch: int, train_acc: float, val_loss: float | None,
                  val_acc: float | None) -> None:
        self.train_acc.append(float(epoch), 100.0 * train_acc)
        if val_loss is not None:
            self.val_loss.append(float(epoch), float(val_loss))
        if val_acc is not None:
            self.val_acc.append(float(epoch), 100.0 * val_acc)
        self.loss_version += 1
        self.acc_version += 1

    @property
    def empty(self) -> bool:
        return len(self.train_loss) == 0 and len(self.train_acc) == 0

    def loss_series(self, max_points: int, smoothing: float = 0.8) -> dict[str, tuple[list[float], list[float]]]:
        """{'train': (epochs, smoothed loss), 'val': (epochs, loss)}, thinned to max_points."""
        xs, ys = self.train_loss.points()
        xs = [x / self.steps_per_epoch for x in xs]
        train = thin(xs, ema(ys, smoothing), max_points)
        return {"train": train, "val": thin(*self.val_loss.points(), max_points)}

    def accuracy_series(self, max_points: int) -> dict[str, tuple[list[float], list[float]]]:
        return {
            "train": thin(*self.train_acc.points(), max_points),
            "val": thin(*self.val_acc.points(), max_points),
        }
