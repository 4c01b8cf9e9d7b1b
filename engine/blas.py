"""One BLAS thread-count limit for the engine's long loops (race, LR finder): a context
manager, or a no-op when ``threads`` is falsy or threadpoolctl is missing."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any


def blas_limits(threads: int | None) -> Any:
    if not threads:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:      # pragma: no cover - a dependency
        return nullcontext()
    return threadpool_limits(limits=threads)
