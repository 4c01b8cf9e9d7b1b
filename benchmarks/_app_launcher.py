"""Start `termnist` (tui.cli.main) with benchmark-only overrides, for what-if experiments.

Environment knobs (all optional; without them this is plain `termnist`):

  TERMNIST_BENCH_BLAS_THREADS=N   the app's training process uses N BLAS threads (not 1),
                                  and so does every ``threadpoolctl.threadpool_limits(...)``
                                  call made through the module attribute
  TERMNIST_BENCH_CHART_S=S        the loss chart checks for new data every S seconds
                                  (LossChart.REDRAW_INTERVAL, 0.25 in the app)
  TERMNIST_BENCH_PROGRESS_S=S     the training runner posts progress / loss points at most
                                  every S seconds (TrainingRunner.throttle_s, 0.2 in the app)

They measure what a change would buy (BLAS threads in the app, a low-bandwidth mode)
before anyone writes it. Nothing in engine/ or tui/ is modified on disk.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable


def patch_blas(n: int) -> Callable[[], None]:
    """Force N BLAS threads: every ``threadpoolctl.threadpool_limits(...)`` made through the
    module attribute, and the app's training process. Returns the function that undoes it."""
    import threadpoolctl

    from tui.app import TermnistApp

    original, original_trainer = threadpoolctl.threadpool_limits, TermnistApp.TRAINER_BLAS_THREADS

    # (mypy: subclassing the class read from a variable is the point of the patch)
    class threadpool_limits(original):  # type: ignore[valid-type,misc]  # noqa: N801 - same name as the patched class
        def __init__(self, limits=None, user_api=None):
            super().__init__(limits=n, user_api=user_api)

    threadpoolctl.threadpool_limits = threadpool_limits
    TermnistApp.TRAINER_BLAS_THREADS = n          # the training process's limit

    def undo() -> None:
        threadpoolctl.threadpool_limits = original
        TermnistApp.TRAINER_BLAS_THREADS = original_trainer

    return undo


def apply_overrides(env: dict[str, str] | os._Environ = os.environ) -> list[str]:
    applied = []
    n = int(env.get("TERMNIST_BENCH_BLAS_THREADS", "0") or 0)
    if n > 0:
        patch_blas(n)
        applied.append(f"BLAS threads {n}")
    chart = env.get("TERMNIST_BENCH_CHART_S")
    if chart:
        from tui.widgets.loss_chart import LossChart

        LossChart.REDRAW_INTERVAL = float(chart)
        applied.append(f"chart every {chart} s")
    progress = env.get("TERMNIST_BENCH_PROGRESS_S")
    if progress:
        import tui.controllers.run

        # a partial where the class was (the run controller only calls it)
        tui.controllers.run.TrainingRunner = functools.partial(  # type: ignore[misc,assignment]
            tui.controllers.run.TrainingRunner, throttle_s=float(progress))
        applied.append(f"progress every {progress} s")
    return applied


def main() -> int:
    apply_overrides()
    from tui.cli import main as termnist_main

    return termnist_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
