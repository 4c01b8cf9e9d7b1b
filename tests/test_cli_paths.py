"""Every `termnist` command, given a path the OS refuses, says so in one line naming the path:
exit status 1 or 2, never a traceback (the README promises none).

The paths: a name too long for the file system (ENAMETOOLONG), a regular file used as a
directory (ENOTDIR), a directory that does not exist, a directory where a file is expected,
and (as the tests run as root, simulated) a directory the user may not read (EACCES).
Commands run in-process through `tui.cli.main` (a traceback would escape it as an exception,
which fails the test too), one of them as a real process.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.idx import write_idx
from tests.factories import make_dataset
from tui.cli import main

REPO = Path(__file__).resolve().parents[1]
TRAIN = ("train", "--layers", "8", "--epochs", "1", "--val-size", "50")


pytestmark = pytest.mark.usefixtures("isolated_cli")   # tests/conftest.py


@pytest.fixture
def places(tmp_path) -> dict[str, Path]:
    """A good IDX directory, a good model, and the bad paths by kind."""
    good = tmp_path / "idx"
    ds = make_dataset(n_train=300, n_test=60, side=28)
    good.mkdir()
    for name, a in (("train-images-idx3-ubyte.gz", ds.x_train), ("train-labels-idx1-ubyte.gz", ds.y_train),
                    ("t10k-images-idx3-ubyte.gz", ds.x_test), ("t10k-labels-idx1-ubyte.gz", ds.y_test)):
        write_idx(good / name, a)
    model = tmp_path / "model.npz"
    assert main([*TRAIN, "--data", str(good), "--save", str(model)]) == 0
    (tmp_path / "afile").write_text("a regular file\n")
    (tmp_path / "adir").mkdir()
    return {
        "good-data": good,
        "good-model": model,
        "too-long": tmp_path / ("n" * 300),
        "file-as-dir": tmp_path / "afile" / "inside",
        "missing": tmp_path / "nowhere" / "deeper",
        "a-dir": tmp_path / "adir",
    }


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code: int, out: str, err: str, path: Path) -> None:
    assert code in (1, 2), (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("termnist: ") and str(path) in lines[0], err


# (command line with PATH where the bad path goes, which bad kinds apply)
DIR_KINDS = ("too-long", "file-as-dir", "missing")
FILE_KINDS = ("too-long", "file-as-dir", "missing", "a-dir")
COMMANDS = [
    ((*TRAIN, "--data", "PATH"), (*DIR_KINDS, "a-file")),
    ((*TRAIN, "--data", "GOOD", "--save", "PATH/m.npz"), ("too-long", "file-as-dir", "missing")),
    ((*TRAIN, "--data", "GOOD", "--save", "PATH"), ("too-long", "a-dir")),
    (("eval", "PATH"), FILE_KINDS),
    (("eval", "MODEL", "--data", "PATH"), (*DIR_KINDS, "a-file")),
    (("datasets", "--data", "PATH"), (*DIR_KINDS, "a-file")),
    (("download", "--verify", "PATH"), (*DIR_KINDS, "a-file")),
    (("download", "--to", "PATH"), ("too-long", "file-as-dir")),   # a missing one is created
    (("--data", "PATH"), (*DIR_KINDS, "a-file")),                    # the app, before its TTY check
    (("--load", "PATH"), FILE_KINDS),
]
CASES = [(argv, kind) for argv, kinds in COMMANDS for kind in kinds]


@pytest.mark.parametrize(("argv", "kind"), CASES, ids=[f"{' '.join(a)}-{k}" for a, k in CASES])
def test_every_command_refuses_os_refused_paths_in_one_line(capsys, places, tmp_path, argv, kind):
    bad = tmp_path / "afile" if kind == "a-file" else places[kind]
    args = [a.replace("PATH", str(bad)).replace("GOOD", str(places["good-data"]))
            .replace("MODEL", str(places["good-model"])) for a in argv]
    code, out, err = run(capsys, *args)
    assert_refused(code, out, err, bad)


def test_a_directory_the_user_may_not_read(capsys, places, monkeypatch):
    """EACCES (root reads anything, so os.stat is made to refuse, as for a user without
    search permission on a parent directory)."""
    secret = places["good-data"]
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if str(path).startswith(str(secret)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    for argv in ((*TRAIN, "--data", str(secret)), ("datasets", "--data", str(secret)),
                 ("download", "--verify", str(secret)), ("eval", str(places["good-model"]), "--data", str(secret)),
                 ("--data", str(secret)), (*TRAIN, "--save", str(secret / "m.npz"))):
        code, out, err = run(capsys, *argv)
        assert_refused(code, out, err, secret)
        assert "permission denied" in err, argv


def test_the_app_panel_check_names_the_path_and_reason(tmp_path, places):
    """The data panel's "use a directory" goes through the same engine helper."""
    from tui.data_status import check_directory, data_report

    for kind, reason in (("too-long", "too long"), ("file-as-dir", "not a directory")):
        path, why = check_directory("mnist", str(places[kind]))
        assert path is None and str(places[kind]) in why and reason in why
        report = data_report("mnist", places[kind])
        assert str(places[kind]) in report.headline and reason in report.headline


def test_the_app_panel_check_survives_odd_input(tmp_path, monkeypatch):
    from tui.data_status import check_directory

    path, why = check_directory("mnist", str(tmp_path / "a\0b"))
    assert path is None and "null byte" in why
    monkeypatch.setattr(os, "getcwd", lambda: (_ for _ in ()).throw(FileNotFoundError(2, "gone")))
    path, why = check_directory("mnist", "relative/dir")
    assert path is None and "current directory no longer exists" in why


def test_a_real_process_too(places):
    r = subprocess.run([sys.executable, "-m", "tui.cli", "eval", str(places["too-long"])], capture_output=True,
                       text=True, cwd=REPO, stdin=subprocess.DEVNULL, timeout=120, check=False,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert_refused(r.returncode, r.stdout, r.stderr, places["too-long"])
    assert "too long" in r.stderr


@pytest.mark.parametrize("kind", ["too-long", "file-as-dir"])
def test_resume_with_a_state_directory_the_os_refuses(capsys, places, monkeypatch, kind):
    monkeypatch.setenv("TERMNIST_STATE_DIR", str(places[kind]))
    code, out, err = run(capsys, "--resume")
    assert_refused(code, out, err, places[kind])


def test_verify_with_nothing_downloaded_says_how_to_download(capsys, tmp_path):
    code, out, err = run(capsys, "download", "kmnist", "--verify")
    assert_refused(code, out, err, tmp_path / "cache" / "termnist" / "kmnist")
    assert "no such directory (nothing downloaded there yet: `termnist download kmnist`)" in err
