"""Usage errors of the `termnist` command: exit 2, one line, named by the flag as typed.

Also: an argument that cannot apply (--data with --dataset digits) is refused, never
silently ignored; `idx` is offered wherever datasets are listed.
"""

from __future__ import annotations

import pytest

from tui.cli import build_parser, main

TRAIN = ("train", "--dataset", "mnist-sample", "--layers", "8", "--epochs", "1")


pytestmark = pytest.mark.usefixtures("isolated_cli")   # tests/conftest.py


def usage_error(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert out == "" and "Traceback" not in err
    line, = err.strip().splitlines()
    assert line.startswith("termnist: error: ")
    return line.removeprefix("termnist: error: ")


@pytest.mark.parametrize(("argv", "start"), [
    (("--preset", "foo"), "--preset: unknown preset 'foo'"),
    (("--dataset", "foo"), "--dataset: unknown dataset 'foo'"),
    (("--batch-size", "0"), "--batch-size: "),
    (("--warmup-epochs", "5"), "--warmup-epochs: 5 must be below the number of epochs"),
    (("--threads", "100000000000000000000"), "--threads: 100000000000000000000 is out of range"),
    (("--threads", "0"), "--threads: 0 is out of range"),
    (("--save", ""), "--save: empty path"),
])
def test_train_usage_errors_name_the_flag_as_typed(capsys, argv, start):
    message = usage_error(capsys, *TRAIN, *argv)
    assert message.startswith(start), message
    assert "_" not in message.split(":")[0]          # never an internal field name


@pytest.mark.parametrize("name", ["digits", "mnist-sample"])
def test_data_that_cannot_apply_is_refused(capsys, tmp_path, name):
    message = usage_error(capsys, "train", "--dataset", name, "--data", str(tmp_path), "--epochs", "1")
    assert message.startswith(f"--data {tmp_path}: does not apply to --dataset {name}")
    message = usage_error(capsys, "--dataset", name, "--data", str(tmp_path))        # the app too
    assert "does not apply" in message


def test_a_dataset_the_user_did_not_type_is_named_by_where_it_came_from(capsys, tmp_path):
    message = usage_error(capsys, "train", "--preset", "digits", "--data", str(tmp_path))
    assert message.startswith(f"--data {tmp_path}: does not apply to dataset digits (from --preset digits)")


def test_idx_without_a_directory_is_a_usage_error(capsys):
    assert usage_error(capsys, "train", "--dataset", "idx").startswith("--dataset idx: needs --data DIR")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_download_timeout_must_be_positive(capsys, tmp_path, value):
    message = usage_error(capsys, "download", "--to", str(tmp_path / "d"), f"--timeout={value}")
    assert message.startswith("--timeout: ")
    assert not (tmp_path / "d").exists()


def test_idx_is_offered_everywhere(capsys):
    parser = build_parser()
    assert "idx" in parser.format_help()
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "idx (any IDX set" in capsys.readouterr().out
    from tui.data_status import selectable_datasets

    assert "idx" in selectable_datasets()


@pytest.mark.parametrize(("argv", "needle"), [
    (("download", "--verify", "A", "--to", "B"), "--to B: does not apply to --verify A"),
    (("download", "--verify", "--mirror", "http://x/"), "--mirror: does not apply to --verify"),
])
def test_download_flags_that_cannot_apply_are_refused(capsys, argv, needle):
    assert usage_error(capsys, *argv).startswith(needle)


@pytest.mark.parametrize(("flags", "note"), [
    (("--optimizer", "adam", "--momentum", "0.5"), "--momentum has no effect with --optimizer adam"),
    (("--schedule", "cosine", "--gamma", "0.5"), "--gamma has no effect with --schedule cosine"),
    (("--init", "he", "--init-std", "0.1"), "--init-std has no effect with --init he"),
    (("--max-shift", "1"), "--max-shift has no effect with --augment none"),
])
def test_train_flags_without_effect_are_said_to_be_ignored(capsys, flags, note):
    assert main([*TRAIN, *flags]) == 0
    err = capsys.readouterr().err
    assert f"termnist: {note}" in err and "ignored" in err
