"""Small synthetic datasets for fast, deterministic tests (no files needed)."""

from __future__ import annotations

import numpy as np

from pathlib import Path

from engine.datasets import Dataset


def make_dataset(n_train: int = 600, n_test: int = 200, side: int = 8, n_classes: int = 10,
                 seed: int = 0, noise: int = 40) -> Dataset:
    """A learnable image set: class k lights up row-block k; plus uniform noise. uint8 images."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % n_classes
        rng.shuffle(y)
        x = rng.integers(0, noise, size=(n, side, side), dtype=np.uint8)
        for k in range(n_classes):
            r, c = divmod(k, side // 2)
            x[y == k, 2 * (r % (side // 2)), (2 * c) % side : (2 * c) % side + 2] = 255
        return x, y.astype(np.uint8)

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return Dataset(
        name="synthetic",
        title="Synthetic",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(str(i) for i in range(n_classes)),
        source="generated",
        is_sample=False,
        max_value=255,
    )


def write_idx_set(directory: Path, ds: Dataset) -> Path:
    """``ds`` as the four canonical MNIST IDX files (gzipped) in ``directory``."""
    from engine.idx import write_idx

    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / "train-images-idx3-ubyte.gz", ds.x_train)
    write_idx(directory / "train-labels-idx1-ubyte.gz", ds.y_train)
    write_idx(directory / "t10k-images-idx3-ubyte.gz", ds.x_test)
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", ds.y_test)
    return directory
