"""`termnist --dataset idx --data DIR` is accepted by the app (idx was missing from its
choices and refused as an unknown dataset), and loads IDX images of any size."""

from __future__ import annotations

from engine.idx import write_idx
from tests.factories import make_dataset
from tests.tui.conftest import settle, wait_for
from tui.app import TermnistApp


async def test_the_app_takes_the_idx_dataset_of_any_image_size(tmp_path):
    ds = make_dataset(n_train=200, n_test=40, side=12)
    d = tmp_path / "idx12"
    d.mkdir()
    for name, a in (("train-images-idx3-ubyte.gz", ds.x_train), ("train-labels-idx1-ubyte.gz", ds.y_train),
                    ("t10k-images-idx3-ubyte.gz", ds.x_test), ("t10k-labels-idx1-ubyte.gz", ds.y_test)):
        write_idx(d / name, a)
    app = TermnistApp(data_dir=str(d), dataset="idx", config_dir=tmp_path / "config")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "idx" in app.form.datasets and app.form.values()["dataset"] == "idx"
        await wait_for(pilot, lambda: app.dataset is not None, what="the idx set loaded")
        assert app.dataset.image_shape == (12, 12)
        assert not [e for e in app.errors_seen if "unknown dataset" in e]
