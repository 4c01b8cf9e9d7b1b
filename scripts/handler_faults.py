"""Does a failing message handler fail the tests that pass through it? (issue #11's check)

    python scripts/handler_faults.py [HANDLER ...]     # default: points progress _epoch_ended

First records which app tests reach each of RunView's handlers (loss points, progress, epoch
end), then, for each handler, makes it raise and runs those tests again: every one of them
must fail, except a test marked ``expect_internal_error`` (it provokes a handler error on
purpose). Prints the counts. Takes about ten minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pytest(fault: str, out: Path, tests: list[str]) -> None:
    env = {**os.environ, "FAULT": fault, "FAULT_OUT": str(out),
           "PYTHONPATH": os.pathsep.join([str(REPO / "scripts"), str(REPO)])}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "faultplug", *tests],
                   cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def main() -> int:
    handlers = sys.argv[1:] or ["points", "progress", "_epoch_ended"]
    work = Path(tempfile.mkdtemp(prefix="termnist-faults-"))
    pytest("record", work / "record.json", ["tests/tui", "--deselect", "tests/tui/test_snapshots.py"])
    record = json.loads((work / "record.json").read_text())
    print(f"without a fault: {len(record['failed'])} failed")
    worst = 0
    for name in handlers:
        reached = sorted(record["reached"][name])
        pytest(name, work / f"{name}.json", reached)
        result = json.loads((work / f"{name}.json").read_text())
        bad = set(result["failed"]) | set(result["errors"])
        passed = [t for t in reached if t not in bad]
        print(f"RunView.{name} raising: {len(reached)} tests pass through it, {len(set(reached) & bad)} fail; "
              f"still passing: {passed or 'none'}")
        worst = max(worst, len(passed))
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
