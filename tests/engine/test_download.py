"""engine.download and the `download`/`datasets` commands, against a local HTTP server on
127.0.0.1 whose behaviour each test controls (404, cut connections, ignored Range, ...)."""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import io
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

from engine import datasets as ds
from engine import download as dl
from engine.datasets import IDX_FILES, FileCheck, load_dataset
from engine.errors import DownloadError
from engine.idx import write_idx
from tests.local_http import LocalServer
from tui.commands import data as cli

GZ = [f"{n}.gz" for n in IDX_FILES]


# --- a controllable server ------------------------------------------------------------------

class Server(LocalServer):
    """Serves ``files`` {url path: bytes}. ``modes`` {url path: mode} changes behaviour:
    "cut" sends Content-Length then closes after half the body (``cuts`` times, then serves
    normally), "ignore-range" answers every request with 200 and the whole body,
    "hang" waits until the test ends before answering. Range requests get 206 (or 416)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.cuts = 1
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                path, rng = self.path, self.headers.get("Range")
                server.requests.append((path, rng))
                mode = server.modes.get(path, "")
                if mode == "hang":
                    server.release.wait(10)
                    return
                body = server.files.get(path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if rng and mode != "ignore-range":
                    start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if mode == "cut" and server.cuts > 0:
                    server.cuts -= 1
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.start(Handler)

    def close(self) -> None:
        self.release.set()
        self.stop()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _synthetic_set(n_train=200, n_test=50) -> dict[str, bytes]:
    """Four small 28x28 IDX .gz files: {canonical .gz name: bytes}."""
    rng = np.random.default_rng(11)
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for (fx, fy), n in ((IDX_FILES[:2], n_train), (IDX_FILES[2:], n_test)):
            write_idx(Path(tmp) / f"{fx}.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
            write_idx(Path(tmp) / f"{fy}.gz", (np.arange(n) % 10).astype(np.uint8))
        for name in GZ:
            out[name] = (Path(tmp) / name).read_bytes()
    return out


SET = _synthetic_set()
CHECKS = tuple(FileCheck(n, sha256=hashlib.sha256(gzip.decompress(SET[f"{n}.gz"])).hexdigest())
               for n in IDX_FILES)


@pytest.fixture
def registry(monkeypatch, tmp_path, server):
    """Point 'mnist' at the synthetic files' checksums and the local server; isolate the
    cache and $TERMNIST_*."""
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(ds.DATASETS["mnist"], files=CHECKS))
    monkeypatch.setitem(dl.MIRRORS, "mnist", (f"{server.url}/good/",))
    monkeypatch.setattr(ds, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(ds, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.delenv("TERMNIST_MIRROR", raising=False)
    monkeypatch.delenv("TERMNIST_DATA", raising=False)
    for name, body in SET.items():
        server.files[f"/good/{name}"] = body
    return server


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


def _assert_complete(d: Path) -> None:
    assert sorted(p.name for p in d.iterdir()) == sorted(GZ)  # no .part left, nothing else
    for name in GZ:
        assert (d / name).read_bytes() == SET[name]


# --- downloads ------------------------------------------------------------------------------

def test_good_download_then_load_then_skip(registry, tmp_path):
    seen, lines = [], []
    target = dl.download("mnist", to=tmp_path / "d", progress=lambda *a: seen.append(a),
                         log=lines.append)
    assert target == tmp_path / "d"
    _assert_complete(target)
    last = {}
    for name, done, total in seen:
        assert total == len(SET[name]) and 0 < done <= total
        last[name] = done
    assert last == {n: len(SET[n]) for n in GZ}
    d = load_dataset("mnist", data_dir=target)
    assert d.x_train.shape == (200, 28, 28) and not d.is_sample
    n_requests = len(registry.requests)
    lines.clear()
    dl.download("mnist", to=target, log=lines.append)
    assert len(registry.requests) == n_requests  # everything verified and skipped
    assert all("already present (SHA-256 of the content matches)" in line for line in lines)


def test_default_target_is_the_cache_where_load_dataset_looks(registry, tmp_path):
    target = dl.download("mnist")
    assert target == tmp_path / "cache" / "mnist"
    d = load_dataset("mnist")
    assert d.source == str(target) and len(d.x_train) == 200


def test_first_mirror_404_and_refused_then_next_works(registry, tmp_path):
    lines = []
    refused = _closed_port_url()
    dl.download("mnist", to=tmp_path / "d", mirrors=[f"{registry.url}/missing/", refused],
                log=lines.append)
    _assert_complete(tmp_path / "d")
    failures = [line for line in lines if line.startswith("mirror failed")]
    assert len(failures) == 8  # two bad mirrors x four files
    assert f"mirror failed: {registry.url}/missing/train-images-idx3-ubyte.gz: HTTP 404 Not Found" \
        in failures
    assert f"mirror failed: {refused}train-images-idx3-ubyte.gz: connection refused" in failures


def test_wrong_checksum_is_rejected_and_nothing_is_left(registry, tmp_path):
    registry.files[f"/good/{GZ[0]}"] = SET[GZ[2]]  # a valid file, but the wrong one
    with pytest.raises(DownloadError) as ei:
        dl.download("mnist", to=tmp_path / "d")
    msg = str(ei.value)
    assert msg.startswith(f"{GZ[0]}: every mirror failed: {registry.url}/good/{GZ[0]}: "
                          "wrong checksum: SHA-256 of the content is ")
    assert "\n" not in msg
    assert list((tmp_path / "d").iterdir()) == []  # no final file, no .part


def test_wrong_checksum_on_one_mirror_then_a_good_one(registry, tmp_path):
    registry.files[f"/bad/{GZ[1]}"] = b"\x1f\x8b garbage"
    lines = []
    dl.download("mnist", to=tmp_path / "d", mirrors=[f"{registry.url}/bad/"], log=lines.append)
    _assert_complete(tmp_path / "d")
    assert any(line.startswith(f"mirror failed: {registry.url}/bad/{GZ[1]}: wrong checksum")
               for line in lines)


def test_every_mirror_failing_lists_every_reason(registry, tmp_path, monkeypatch):
    monkeypatch.setitem(dl.MIRRORS, "mnist", (f"{registry.url}/nope/", _closed_port_url()))
    with pytest.raises(DownloadError, match=r"^train-images-idx3-ubyte.gz: every mirror failed: "
                       r".*/nope/train-images-idx3-ubyte.gz: HTTP 404 Not Found; "
                       r"http://127.0.0.1:\d+/train-images-idx3-ubyte.gz: connection refused$"):
        dl.download("mnist", to=tmp_path / "d")


def test_cut_connection_resumes_with_range_in_the_same_call(registry, tmp_path):
    registry.modes[f"/good/{GZ[0]}"] = "cut"
    lines = []
    dl.download("mnist", to=tmp_path / "d", log=lines.append)
    _assert_complete(tmp_path / "d")
    half = len(SET[GZ[0]]) // 2
    assert (f"/good/{GZ[0]}", f"bytes={half}-") in registry.requests
    assert f"{GZ[0]}: connection closed early after {half} of {len(SET[GZ[0]])} bytes; resuming" in lines


def test_cut_connection_leaves_part_then_a_later_call_resumes(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_RESUMES", 0)
    registry.modes[f"/good/{GZ[0]}"] = "cut"
    size, half = len(SET[GZ[0]]), len(SET[GZ[0]]) // 2
    with pytest.raises(DownloadError, match=rf"connection closed early after {half} of {size} bytes"):
        dl.download("mnist", to=tmp_path / "d")
    part = tmp_path / "d" / f"{GZ[0]}.part"
    assert part.read_bytes() == SET[GZ[0]][:half]
    assert not (tmp_path / "d" / GZ[0]).exists()
    registry.requests.clear()
    dl.download("mnist", to=tmp_path / "d")
    _assert_complete(tmp_path / "d")
    assert registry.requests[0] == (f"/good/{GZ[0]}", f"bytes={half}-")


def test_server_ignoring_range_restarts_cleanly(registry, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / f"{GZ[0]}.part").write_bytes(b"X" * 100)  # would corrupt the file if appended to
    registry.modes[f"/good/{GZ[0]}"] = "ignore-range"
    lines = []
    dl.download("mnist", to=d, log=lines.append)
    _assert_complete(d)
    assert (f"/good/{GZ[0]}", "bytes=100-") in registry.requests
    assert f"{GZ[0]}: the server ignored the range request; starting again" in lines


def test_resumed_part_from_elsewhere_that_fails_is_downloaded_again(registry, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / f"{GZ[0]}.part").write_bytes(b"X" * 100)  # server honours Range: result is wrong
    lines = []
    dl.download("mnist", to=d, log=lines.append)
    _assert_complete(d)
    assert any("resumed file does not verify" in line for line in lines)


def test_complete_part_gets_416_and_is_verified(registry, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / f"{GZ[0]}.part").write_bytes(SET[GZ[0]])
    dl.download("mnist", to=d)
    _assert_complete(d)
    assert (f"/good/{GZ[0]}", f"bytes={len(SET[GZ[0]])}-") in registry.requests


def test_cancel_keeps_the_part_for_resuming(registry, tmp_path):
    registry.files[f"/good/{GZ[0]}"] = SET[GZ[0]]
    cancel = threading.Event()
    big = SET[GZ[0]]
    assert len(big) > 2 * dl._CHUNK  # needs more than one chunk to cancel mid-file

    def progress(name, done, total):
        cancel.set()

    with pytest.raises(dl.DownloadCancelled, match=r"download cancelled; .*part kept for resuming"):
        dl.download("mnist", to=tmp_path / "d", progress=progress, cancel=cancel)
    part = tmp_path / "d" / f"{GZ[0]}.part"
    assert 0 < part.stat().st_size < len(big) and not (tmp_path / "d" / GZ[0]).exists()
    dl.download("mnist", to=tmp_path / "d")
    _assert_complete(tmp_path / "d")


def test_timeout_moves_on_to_the_next_mirror(registry, tmp_path):
    registry.modes[f"/slow/{GZ[0]}"] = "hang"
    lines = []
    dl.download("mnist", to=tmp_path / "d", mirrors=[f"{registry.url}/slow/"], timeout=0.3,
                log=lines.append)
    _assert_complete(tmp_path / "d")
    assert f"mirror failed: {registry.url}/slow/{GZ[0]}: timed out" in lines


def test_mirror_order_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TERMNIST_MIRROR", " http://e1/x ,http://e2/y/\nhttp://a/ ")
    got = dl.mirror_list("mnist", ["http://a", str(tmp_path)])
    assert got[:4] == ["http://a/", tmp_path.as_uri() + "/", "http://e1/x/", "http://e2/y/"]
    assert got[4:] == [m.rstrip("/") + "/" for m in dl.MIRRORS["mnist"]]
    monkeypatch.delenv("TERMNIST_MIRROR")
    assert dl.mirror_list("kmnist") == list(dl.MIRRORS["kmnist"])


def test_env_mirror_and_local_directory_mirror(registry, tmp_path, monkeypatch):
    local = tmp_path / "usb"
    local.mkdir()
    for name, body in SET.items():
        (local / name).write_bytes(body)
    monkeypatch.setenv("TERMNIST_MIRROR", str(local))
    monkeypatch.setitem(dl.MIRRORS, "mnist", (_closed_port_url(),))
    dl.download("mnist", to=tmp_path / "d")
    _assert_complete(tmp_path / "d")


def test_md5_of_gz_and_no_checksum_at_all(registry, tmp_path, monkeypatch):
    md5 = tuple(FileCheck(n, md5_gz=hashlib.md5(SET[f"{n}.gz"]).hexdigest()) for n in IDX_FILES)
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(ds.DATASETS["mnist"], files=md5))
    lines = []
    dl.download("mnist", to=tmp_path / "a", log=lines.append)
    _assert_complete(tmp_path / "a")
    assert all("MD5 of the .gz matches" in line for line in lines if "downloaded from" in line)
    bare = tuple(FileCheck(n) for n in IDX_FILES)
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(ds.DATASETS["mnist"], files=bare))
    lines.clear()
    dl.download("mnist", to=tmp_path / "b", log=lines.append)
    assert f"{GZ[0]}: not verified: no checksum known for this file" in lines


def test_not_downloadable():
    with pytest.raises(DownloadError, match="is not downloaded by termnist"):
        dl.download("digits")


@pytest.mark.full_mnist
def test_real_mnist_files_verify_against_the_registry(full_mnist_dir, server, tmp_path, monkeypatch):
    """Serve the real .gz files: the registry's SHA-256 of the content must accept them."""
    for name in GZ:
        server.files[f"/m/{name}"] = (full_mnist_dir / name).read_bytes()
    monkeypatch.setitem(dl.MIRRORS, "mnist", (f"{server.url}/m/",))
    monkeypatch.delenv("TERMNIST_MIRROR", raising=False)
    dl.download("mnist", to=tmp_path / "real")
    assert load_dataset("mnist", data_dir=tmp_path / "real").x_train.shape == (60_000, 28, 28)


# --- the commands ---------------------------------------------------------------------------

def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="termnist")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_downloadable_names_match_the_registry():
    assert tuple(dl.MIRRORS) == cli.DOWNLOADABLE


def test_cli_download_to_dir_then_load(registry, tmp_path, capsys):
    d = tmp_path / "d"
    assert run_cli("download", "--to", str(d), "--mirror", f"{registry.url}/missing/") == 0
    out, err = capsys.readouterr()
    assert f"MNIST is ready in {d}" in out and f"termnist --data {d}" in out
    assert f"mirror failed: {registry.url}/missing/{GZ[0]}: HTTP 404 Not Found" in err
    assert re.search(rf"{GZ[0]}  \d+\.\d kB / \d+\.\d kB  100%", err)  # a final progress line
    assert "Traceback" not in err
    assert load_dataset("mnist", data_dir=d).x_test.shape == (50, 28, 28)

    # ... and `termnist train --data DIR` trains on what was downloaded
    from tui.cli import main as termnist_main

    assert termnist_main(["train", "--data", str(d), "--epochs", "1", "--layers", "8",
                          "--val-size", "20", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["n_train"] == 180 and start["n_test"] == 50 and str(d) in start["dataset"]
    assert any(e["event"] == "done" for e in events)

    assert run_cli("download", "--verify", str(d)) == 0
    out = capsys.readouterr().out
    assert out.count("ok         ") == 4 and "all 4 files" in out
    (d / GZ[3]).write_bytes(SET[GZ[1]])
    assert run_cli("download", "--verify", str(d)) == 1
    out, err = capsys.readouterr()
    assert f"mismatch   {GZ[3]}: SHA-256 of the content is" in out
    assert err == f"termnist: error: 1 of 4 MNIST files in {d} not verified\n"


def test_cli_download_failure_is_one_line(registry, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(dl.MIRRORS, "mnist", (_closed_port_url(),))
    assert run_cli("download", "--to", str(tmp_path / "d")) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("termnist: error:")]
    assert len(errors) == 1 and "every mirror failed" in errors[0] and "Traceback" not in err
    assert "" not in err.splitlines()
    assert all(line.startswith(("mirror failed: ", "termnist: error: ")) for line in err.splitlines())


def test_cli_datasets_table(registry, tmp_path, capsys):
    dl.download("mnist")  # into the (tmp) cache
    assert run_cli("datasets") == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and line.split()[0] in
            ("mnist", "mnist-sample", "fashion-mnist", "kmnist", "digits")}
    assert re.match(r"mnist +found +200 +50 +[\d.]+ kB +yes +" + re.escape(str(tmp_path / "cache")),
                    rows["mnist"])
    assert re.match(r"mnist-sample +found +10000 +2000 +[\d.]+ MB +yes +bundled sample",
                    rows["mnist-sample"])
    assert "missing" in rows["fashion-mnist"] and "termnist download fashion-mnist" in rows["fashion-mnist"]
    assert "fashion-mnist: looked in $TERMNIST_DATA (not set);" in out
    assert "CC BY-SA 3.0" in out


def test_progress_formatting():
    assert cli.format_progress("f.gz", 500_000, 2_000_000, 250_000.0) == \
        "f.gz  500.0 kB / 2.0 MB   25%  250.0 kB/s  ETA 0:06"
    assert cli.format_progress("f.gz", 1234, None, None) == "f.gz  1.2 kB"
    assert cli.human_bytes(999) == "999 B"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    t = [0.0]
    stream = Tty()
    line = cli.ProgressLine(stream, clock=lambda: t[0])
    line("a.gz", 0, 100)
    t[0] = 1.0
    line("a.gz", 50, 100)
    t[0] = 1.05
    line("a.gz", 60, 100)  # throttled: within 0.1 s
    line.log("note")
    assert stream.getvalue() == ("\r\x1b[Ka.gz  0 B / 100 B    0%"
                                 "\r\x1b[Ka.gz  50 B / 100 B   50%  50 B/s  ETA 0:01"
                                 "\r\x1b[Knote\n")


def test_a_directory_in_the_way_of_a_downloaded_file_is_one_error(registry, tmp_path):
    to = tmp_path / "to"
    (to / "t10k-labels-idx1-ubyte.gz").mkdir(parents=True)
    with pytest.raises(DownloadError, match=r"t10k-labels-idx1-ubyte.gz: cannot put the downloaded file in place"):
        dl.download("mnist", to=to)


def test_a_local_mirror_that_is_a_symlink_loop_is_only_a_failing_mirror(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert dl.mirror_list("mnist", [str(tmp_path / "a")])[0] == (tmp_path / "a").as_uri() + "/"
