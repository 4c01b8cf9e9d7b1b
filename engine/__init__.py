"""termnist's engine: pure NumPy. IDX files, datasets, an MLP, optimizers, a training session.

Nothing here imports Textual, plotext or rich (tests/test_import_hygiene.py checks it).
Modules, one concept each: see docs/ARCHITECTURE.md.
"""
