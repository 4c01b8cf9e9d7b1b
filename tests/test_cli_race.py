"""`termnist race` and `termnist lr-find`: output, --json, usage errors (in-process, main())."""

from __future__ import annotations

import json
import re

import pytest

from tests.factories import make_dataset, write_idx_set
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cli")
SMALL = ("--layers", "16", "--epochs", "2", "--val-size", "100", "--batch-size", "50")


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return write_idx_set(tmp_path_factory.mktemp("idx"), make_dataset(n_train=400, n_test=100, side=28))


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_race_json_lines(idx_dir, capsys):
    rc = main(["race", "--data", str(idx_dir), *SMALL, "--optimizers", "sgd,adam,rmsprop",
               "--lr", "adam=0.01", "--json"])
    out = lines(capsys.readouterr().out)
    assert rc == 0
    assert out[0]["event"] == "start"
    assert out[0]["optimizers"] == ["sgd", "adam", "rmsprop"] and out[0]["lrs"] == [0.1, 0.01, 0.001]
    epochs = [(o["optimizer"], o["epoch"]) for o in out if o["event"] == "epoch"]
    assert epochs == [("sgd", 1), ("adam", 1), ("rmsprop", 1), ("sgd", 2), ("adam", 2), ("rmsprop", 2)]
    done = out[-1]
    assert done["event"] == "done" and done["reason"] == "completed"
    assert [r["rank"] for r in done["ranking"]] == [1, 2, 3]
    assert sorted(r["optimizer"] for r in done["ranking"]) == ["adam", "rmsprop", "sgd"]
    assert re.fullmatch(r"[0-9a-f]{16}", done["batch_order"])


def test_race_table(idx_dir, capsys):
    assert main(["race", "--data", str(idx_dir), *SMALL, "--optimizers", "momentum,adagrad"]) == 0
    out = capsys.readouterr().out
    assert "one initialisation and batch order (seed 0)" in out
    table = out[out.index(" #  optimizer"):].splitlines()
    assert table[2].startswith(" 1  ") and table[3].startswith(" 2  ")
    assert {table[2].split()[1], table[3].split()[1]} == {"momentum", "adagrad"}


@pytest.mark.parametrize("argv, message", [
    (["--optimizers", "sgd,lion"], "--optimizers: unknown optimizer 'lion'"),
    (["--optimizers", ""], "--optimizers: expected names"),
    (["--optimizers", "sgd,sgd"], "--optimizers: sgd is listed twice"),
    (["--optimizers", "sgd", "--lr", "adam=0.1"], "--lr: 'adam' is not in the race"),
    (["--lr", "adam=fast"], "--lr: 'fast' is not a number"),
    (["--lr", "adam=-1"], "--lr: -1 must be a positive number"),
    (["--epochs", "0"], "--epochs:"),
    (["--layers", "x"], "--layers:"),
    (["--val-size", "5000"], "--val-size:"),
])
def test_race_usage_errors(idx_dir, capsys, argv, message):
    assert main(["race", "--data", str(idx_dir), "--epochs", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("termnist: error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_race_missing_data_is_exit_1(tmp_path, capsys):
    assert main(["race", "--data", str(tmp_path / "nowhere"), "--epochs", "1"]) == 1
    assert "termnist: error:" in capsys.readouterr().err


def test_race_help_defaults_match_the_registry():
    from engine.optim import OPTIMIZER_NAMES, OPTIMIZERS
    from tui.commands.race import LR_HELP, RACE_DEFAULT

    assert ",".join(OPTIMIZER_NAMES) == RACE_DEFAULT
    for name, spec in OPTIMIZERS.items():
        assert f"{name} {spec.race_lr:g}" in LR_HELP


def test_lr_find_json_and_chart(idx_dir, capsys):
    rc = main(["lr-find", "--data", str(idx_dir), "--layers", "16", "--val-size", "100", "--batch-size", "20",
               "--optimizer", "sgd", "--json"])
    out = lines(capsys.readouterr().out)
    assert rc == 0
    points = [o for o in out if o["event"] == "point"]
    done = out[-1]
    assert done["event"] == "done" and len(done["lrs"]) == len(points) >= 10
    assert done["lrs"][0] == pytest.approx(1e-6) and done["suggestion"] == pytest.approx(done["min_lr"] / 10)
    main(["lr-find", "--data", str(idx_dir), "--layers", "16", "--val-size", "100", "--batch-size", "20"])
    text = capsys.readouterr().out
    assert "LR range test" in text and "1e-6" in text and "learning rate (log scale)" in text
    assert "suggested lr" in text and "\x1b[" not in text        # no colour codes into a pipe


@pytest.mark.parametrize("argv, message", [
    (["--start-lr", "0"], "--start-lr: must be a positive number"),
    (["--start-lr", "1", "--end-lr", "0.1"], "--end-lr: 0.1 must be above start_lr"),
    (["--steps", "1"], "--steps: must be an integer in 2..100000"),
    (["--optimizer", "lion"], "--optimizer:"),
])
def test_lr_find_usage_errors(idx_dir, capsys, argv, message):
    assert main(["lr-find", "--data", str(idx_dir), "--val-size", "100", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
