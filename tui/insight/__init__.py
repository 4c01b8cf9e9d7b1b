"""The insight views (F9): what the model sees, for the model being trained or a loaded one.

The contract every view keeps. A view is a Textual widget module in this package that exposes
``VIEW = ViewSpec(...)``; the Insight screen (tui/screens/insight.py) shows each registered view
as a tab, and whenever the model changes (an epoch end while training, a model loaded with
Ctrl+O or ``--load``) it gives the visible view a new ``ModelInput``:

1. ``unavailable(inp)`` (UI thread, cheap): a sentence saying why the view makes no sense for
   this model/dataset (say, "needs 28x28 images"), or None.
2. ``compute(inp)`` runs in a thread worker (never on the event loop, never on the training
   process): pure NumPy via ``engine.insight``; returns a result object.
3. ``show(result)`` (UI thread): draws the result. It must be fast (the view opens in <200 ms
   at 120x40 with a 784-512-256-10 model).

A view never reaches into the training session: it gets a frozen copy of the weights in
``ModelInput.model``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelInput:
    """What every insight view gets: a frozen model and the data it is judged on."""

    model: Any                                  # engine.mlp.MLP, a copy owned by this value
    dataset: Any                                # engine.datasets.Dataset (x_test, y_test, class_names)
    history: Sequence[Mapping[str, Any]] = ()   # the run's epochs so far (EpochEnded as dicts); () when loaded
    label: str = ""                             # "epoch 3" / "loaded model mnist.npz"
    probs: Any = None                           # (n_test, C) test-set probabilities if already computed, else None
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. recent step losses for health


class InsightWidget(Protocol):
    def unavailable(self, inp: ModelInput) -> str | None: ...
    def compute(self, inp: ModelInput) -> Any: ...
    def show(self, result: Any) -> None: ...


@dataclass(frozen=True)
class ViewSpec:
    name: str                    # tab id, e.g. "confusion"
    title: str                   # tab label, e.g. "Confusion"
    build: Callable[[], Any]     # -> a new InsightWidget (a Textual Widget)


def registered() -> tuple[ViewSpec, ...]:
    """Every view, in tab order (imported lazily: the CLI never pays for Textual)."""
    import importlib

    specs = []
    for module in VIEW_MODULES:
        try:
            specs.append(importlib.import_module(f"tui.insight.{module}").VIEW)
        except ModuleNotFoundError:   # a view not built yet
            continue
    return tuple(specs)


# Tab order. A new view: a module here exposing VIEW, and its name in this list.
VIEW_MODULES: tuple[str, ...] = ("confusion", "mistakes", "units", "health", "robustness")
