"""Build the bundled MNIST sample, engine/data/mnist-sample/, from the full MNIST set.

    python scripts/make_sample.py            # (re)generate the files
    python scripts/make_sample.py --verify   # regenerate in memory; check the shipped files

The sample is 1,000 training and 200 test images per class (10,000 + 2,000), chosen with
np.random.default_rng(20261130) without replacement and kept in source order. It is written as
the four canonical IDX .gz files (gzip level 9, no timestamp) plus indices.json, which records
the seed, the chosen source indices and the SHA-256 of each decompressed file. --verify
compares decompressed content byte for byte (the .gz wrapper may differ between zlib builds).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.datasets import (  # noqa: E402
    DATASETS, IDX_FILES, content_sha256, find_idx_files, verify_dir,
)
from engine.errors import TermnistError  # noqa: E402
from engine.idx import read_idx, write_idx  # noqa: E402

SEED = 20261130
PER_CLASS = {"train": 1000, "test": 200}
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "mnist"
DEFAULT_OUT = REPO / "engine" / "data" / "mnist-sample"


def choose(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted source indices: ``per_class`` of each label 0..9, drawn without replacement."""
    picks = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(picks))


def build(source: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The sample's arrays {canonical name: array} and its indices.json content (no sha256 yet)."""
    problems = [r for r in verify_dir("mnist", source) if not r.ok]
    if problems:
        raise SystemExit(f"{source} is not the genuine MNIST set: "
                         + "; ".join(f"{r.file}: {r.detail}" for r in problems))
    files = find_idx_files(source)
    rng = np.random.default_rng(SEED)
    arrays, meta = {}, {"seed": SEED, "per_class": PER_CLASS,
                        "source": "MNIST (Yann LeCun, Corinna Cortes, Christopher J.C. Burges), "
                                  "CC BY-SA 3.0",
                        "source_sha256": {c.name: c.sha256 for c in DATASETS["mnist"].files}}
    for split, (fx, fy) in (("train", IDX_FILES[:2]), ("test", IDX_FILES[2:])):
        x, y = read_idx(files[fx]), read_idx(files[fy])
        idx = choose(y, PER_CLASS[split], rng)
        arrays[fx], arrays[fy] = x[idx], y[idx]
        meta[f"{split}_indices"] = idx.tolist()
    return arrays, meta


def write(out: Path, arrays: dict[str, np.ndarray], meta: dict, gz: bool = True) -> dict:
    """Write the four IDX files (.gz unless ``gz`` is false) and indices.json into ``out``;
    return the full metadata."""
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta, sha256={})
    for name, a in arrays.items():
        path = out / (f"{name}.gz" if gz else name)
        write_idx(path, a, compresslevel=9)
        meta["sha256"][name] = content_sha256(path)
    (out / "indices.json").write_text(json.dumps(meta, separators=(",", ":")) + "\n")
    return meta


def verify(out: Path, source: Path) -> list[str]:
    """Regenerate (uncompressed, in a temporary directory) and compare the decompressed content
    of the files in ``out`` byte for byte, and indices.json; return the problems."""
    arrays, meta = build(source)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = write(Path(tmp), arrays, meta, gz=False)
        for name in IDX_FILES:
            shipped = out / f"{name}.gz"
            if not shipped.is_file():
                problems.append(f"{shipped}: missing")
            elif gzip.decompress(shipped.read_bytes()) != (Path(tmp) / name).read_bytes():
                problems.append(f"{shipped.name}: content differs from the regenerated file")
    try:
        shipped_meta = json.loads((out / "indices.json").read_text())
    except (OSError, ValueError) as e:
        return problems + [f"indices.json: unreadable ({e})"]
    if shipped_meta != fresh:
        differing = sorted(k for k in set(fresh) | set(shipped_meta)
                           if fresh.get(k) != shipped_meta.get(k))
        problems.append(f"indices.json: differs in {', '.join(differing)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                    help=f"full MNIST directory (default: {DEFAULT_SOURCE})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    ap.add_argument("--verify", action="store_true",
                    help="check the files in --out instead of writing them")
    args = ap.parse_args(argv)
    try:
        if args.verify:
            problems = verify(args.out, args.source)
            for p in problems:
                print(f"make_sample: {p}", file=sys.stderr)
            if not problems:
                print(f"{args.out}: OK (matches a regeneration from {args.source})")
            return 1 if problems else 0
        meta = write(args.out, *build(args.source))
    except TermnistError as e:
        print(f"make_sample: {e}", file=sys.stderr)
        return 1
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(f"wrote {args.out}: {len(meta['train_indices'])} train + {len(meta['test_indices'])} "
          f"test images, {total} bytes in total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
