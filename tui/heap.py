"""The UI process's heap and CPython's cyclic garbage collector: keys answered without a
full collection in the way.

A full collection (the oldest generation) walks every tracked object. Once the app has
started there are ~110,000 of them (Textual, Rich, NumPy, plotext and the app's own), and one
full collection took 130-190 ms on a 2-core VM. CPython runs one whenever enough objects have
survived into the oldest generation, which drawing the screen brings about every few seconds
of activity, and a key pressed meanwhile waits for it: measured on the Insight screen, a Tab
took 270 ms with a 150 ms collection inside it, and 80 ms without.

Freezing (``gc.freeze``) moves every object alive at that moment into a permanent generation
that no collection walks. The app freezes once it has started and has imported, from a worker
thread, the modules its screens import on their first open (``ScreenSpec.modules``): those
are the objects that live as long as the app. Frozen objects are still freed by reference
counting; only reference cycles among them wait, until ``thaw`` when the app closes (a test
process runs many apps one after another).
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

WARM_AFTER_S = 1.0       # after the app's mount: the first screen is drawn, the dataset loading


def warm(modules: Iterable[str]) -> list[str]:
    """Import ``modules`` now (a worker thread: the first open of a screen does not pay for
    them); returns the ones that failed, each logged (the screen says why when opened)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a warm-up must not break the app
            log.warning("warming up %s: %s", name, exc)
            failed.append(name)
    return failed


def warm_text() -> None:
    """Load Rich's Unicode width table, as drawing the first character whose width Rich must
    look up does (the Insight screen's shading was the first: a module import on that key)."""
    from rich.cells import get_character_cell_size

    get_character_cell_size("\u30a2")     # a wide character: looked up in the table


def freeze() -> int:
    """Collect the young generations (cheap), then freeze what is alive: later full
    collections walk only what the app makes from now on. Returns the frozen objects' count."""
    gc.collect(1)
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    """Give the frozen objects back to the collector (the app is closing)."""
    gc.unfreeze()
