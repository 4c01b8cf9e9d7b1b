"""termnist benchmarks: ``python -m benchmarks [epoch|accuracy|app|startup|all] [--quick] [--json PATH]``.

Every figure is measured next to its reference in the same run (alternating, so a noisy
shared machine slows both alike) and reported as a median; the ratio is what to read.

Modules, one per area (each section also runs alone):

  common     machine description, statistics, data discovery, the result tables
  epoch      seconds per epoch: engine (TrainingSession and a raw loop) vs PyTorch vs the
             GEMM lower bound, with 1 and 2 BLAS threads; the BLAS threading advice
  torch_ref  the PyTorch reference, run as a subprocess worker (torch never loads here)
  accuracy   time to 97.5% / 98.0% (default preset), accuracy of `best` within 60 / 120 s
  app        app overhead (Textual pilot), chart redraws, key-press latency and bytes
             written per second in a real pty (80x24, 120x40)
  startup    MNIST load time, `termnist --help`, time to the first screen, peak RSS
  terminal   the pty harness (fork/exec in a pseudo-terminal, timestamped output)

Nothing here changes engine/ or tui/; apps started here keep their settings and
recovery state in a temporary directory, never the user's.
"""

SCHEMA_VERSION = 1
