"""Fuzzing engine.idx.read_idx: whatever the bytes, it returns a consistent array or raises
IDXFormatError, and it never allocates much more than the input could hold."""

from __future__ import annotations

import gzip
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import IDXFormatError
from engine.idx import read_idx, write_idx

# Gzip can expand ~1000x, so a 1 KB input may legitimately describe ~1 MB; allow that and a bit.
MEMORY_LIMIT = 4 << 20


def _seeds(tmp_path) -> list[bytes]:
    rng = np.random.default_rng(7)
    out = []
    for dt, shape in [("u1", (6, 4, 4)), ("i1", (9,)), (">i2", (3, 5)), (">i4", (2, 2, 2)),
                      (">f4", (4, 3)), (">f8", (2, 1, 2, 2))]:
        a = (rng.standard_normal(shape) * 50).astype(dt)
        for suffix in ("", ".gz"):
            p = tmp_path / f"seed{suffix}"
            write_idx(p, a)
            out.append(p.read_bytes())
    return out


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 6))
        i = int(rng.integers(0, max(len(b), 1)))
        if op == 0 and b:  # flip a byte
            b[i % len(b)] ^= int(rng.integers(1, 256))
        elif op == 1:  # truncate
            del b[i:]
        elif op == 2:  # insert random bytes
            b[i:i] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        elif op == 3:  # delete a run
            del b[i : i + int(rng.integers(1, 9))]
        elif op == 4 and len(b) >= 8 and b[0] == 0:  # put a large size in the raw header
            b[4:8] = struct.pack(">I", int(rng.integers(0, 2**32)))
        elif op == 5:  # append
            b += rng.integers(0, 256, int(rng.integers(1, 5)), dtype=np.uint8).tobytes()
    return bytes(b)


def _check(path, content: bytes) -> str:
    path.write_bytes(content)
    tracemalloc.start()
    try:
        try:
            a = read_idx(path)
            outcome = "ok"
        except IDXFormatError as e:
            assert str(e).startswith(path.name + ": ") and "\n" not in str(e)
            outcome = "error"
            a = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, (peak, content[:32])
    if a is not None:
        assert 1 <= a.ndim <= 4 and a.size > 0 and a.dtype.isnative
        raw = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
        assert len(raw) == 4 + 4 * a.ndim + a.nbytes  # exactly header + payload, no more
    return outcome


def test_seeded_mutation_fuzz(tmp_path):
    rng = np.random.default_rng(20261130)
    seeds = _seeds(tmp_path)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(1500):
        seed = seeds[int(rng.integers(0, len(seeds)))]
        outcomes[_check(tmp_path / "fuzz.idx", _mutate(seed, rng))] += 1
    # The fuzzer must reach both outcomes, or it is not exercising anything.
    assert outcomes["ok"] > 20 and outcomes["error"] > 500, outcomes


def test_gzip_mutations_of_decompressed_content(tmp_path):
    """Mutate the IDX bytes and then compress them: exercises the checks behind gzip."""
    rng = np.random.default_rng(3)
    seeds = [gzip.decompress(s) for s in _seeds(tmp_path) if s[:2] == b"\x1f\x8b"]
    for _ in range(500):
        data = _mutate(seeds[int(rng.integers(0, len(seeds)))], rng)
        _check(tmp_path / "fuzz.gz", gzip.compress(data, mtime=0))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=64), st.booleans())
def test_arbitrary_bytes(tmp_path, content, gz):
    _check(tmp_path / "hyp.idx", gzip.compress(content, mtime=0) if gz else content)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.sampled_from([8, 9, 11, 12, 13, 14]),
       shape=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
       payload=st.binary(max_size=64), gz=st.booleans())
def test_arbitrary_headers_never_allocate_what_they_claim(tmp_path, code, shape, payload, gz):
    data = bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + payload
    _check(tmp_path / "hdr.idx", gzip.compress(data, mtime=0) if gz else data)


@pytest.mark.parametrize("gz", [False, True])
def test_gzip_bomb_header_is_refused_before_reading(tmp_path, gz):
    """A small file whose header claims 4 GB: refused by the size/ratio check, not by reading."""
    data = bytes([0, 0, 8, 1]) + struct.pack(">I", 2**32 - 1) + bytes(100_000)
    p = tmp_path / "bomb.idx"
    p.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match="truncated: header says 4294967295 = "):
            read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
