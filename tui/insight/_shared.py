"""What the confusion and mistakes views share: the test-set probabilities of a ModelInput
(reused when the app already has them), the checks that a model fits its dataset, and short
class names for narrow columns. No Textual here."""

from __future__ import annotations

from typing import Any

import numpy as np


def test_probs(inp: Any) -> np.ndarray:
    """(n_test, C) probabilities of ``inp.model`` on ``inp.dataset``'s test set: ``inp.probs``
    when the app already computed them for this model, else one chunked forward pass (call it
    in a worker, with one BLAS thread)."""
    ds = inp.dataset
    if inp.probs is not None and len(inp.probs) == len(ds.x_test):
        return np.asarray(inp.probs)
    from engine.training import predict_images

    model = inp.model
    return predict_images(model, ds.x_test, ds.max_value, getattr(model, "dtype", "float32"))


def mismatch(inp: Any) -> str | None:
    """Why ``inp.model`` cannot be judged on ``inp.dataset``'s test set, or None."""
    ds, model = inp.dataset, inp.model
    if ds is None:
        return "no test set loaded: open the data panel (F4) to choose one"
    if len(ds.x_test) == 0:
        return f"{ds.title} has no test images"
    sizes = tuple(getattr(model, "sizes", ()))
    h, w = ds.x_test.shape[1:3]
    if sizes and sizes[0] != h * w:
        return (f"the model takes {sizes[0]} inputs but {ds.title} images are {h}x{w} "
                f"({h * w} pixels): load its own dataset")
    if sizes and sizes[-1] != len(ds.class_names):
        return f"the model has {sizes[-1]} outputs but {ds.title} has {len(ds.class_names)} classes"
    return None


def class_names(inp: Any) -> tuple[str, ...]:
    """The dataset's class names (engine.insight.confusion.class_names_for as a fallback)."""
    from engine.insight.confusion import class_names_for

    ds = inp.dataset
    n = int(getattr(inp.model, "sizes", (0, len(ds.class_names)))[-1])
    names = tuple(getattr(ds, "class_names", ()) or ())
    return names if len(names) == n else class_names_for(getattr(ds, "name", None), n)


def short(name: str, width: int) -> str:
    """``name`` cut to ``width`` characters."""
    return name if len(name) <= width else name[:width]
