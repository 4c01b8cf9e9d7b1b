"""``termnist eval MODEL.npz --mistakes N`` and ``termnist predict MODEL.npz FILE...``.

``eval`` itself lives in tui/commands/train.py; this module adds ``--mistakes N`` to it: the
usual report, then the N test images the model gets most confidently wrong, drawn as ASCII art
with their top-3 probabilities (``--json``: a ``mistakes`` list in the same object).
``predict`` classifies image files (PGM, PNG with Pillow, ASCII-art text) after the drawing
preprocessing of engine/insight/drawing.py. Exit 1 with one line per unreadable file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from typing import Any

EXIT_ERROR = 1


def register(sub: Any) -> None:
    e = sub.choices.get("eval")
    if e is not None:
        e.add_argument("--mistakes", type=int, default=0, metavar="N",
                       help="also show the N test images the model gets most confidently wrong")
        base = e.get_default("func")
        e.set_defaults(func=lambda args: run_eval_mistakes(args, base))
        e.add_argument("--confusion", metavar="FILE.csv|FILE.json", default=None,
                       help="also write the confusion matrix to FILE (.csv: counts with per-class accuracy;"
                            " .json: counts, class names, per-class accuracy, most confused pairs)")
        with_mistakes = e.get_default("func")
        e.set_defaults(func=lambda args: run_eval_confusion(args, with_mistakes))
    p = sub.add_parser(
        "predict", help="classify image files (PGM, PNG, ASCII art)",
        description="Classify image files with a saved model: PGM (P2/P5), PNG (needs the 'image' extra:"
                    " pip install 'termnist[image]'), or a text file of ASCII art as the preview draws it."
                    " Each image is prepared as MNIST was (fit in 20x20, centred by mass in 28x28).")
    p.add_argument("model", metavar="MODEL.npz")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=run_predict)


def _err(text: str) -> None:
    print(f"termnist: {text}", file=sys.stderr, flush=True)


def run_eval_mistakes(args: argparse.Namespace, base: Any) -> int:
    """The usual eval report (``base``), then the worst mistakes."""
    n = int(getattr(args, "mistakes", 0) or 0)
    if n < 0:
        from tui.commands import UsageError

        raise UsageError("--mistakes must be 0 or more")
    if n == 0:
        return int(base(args) or 0)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = int(base(args) or 0)
    if code != 0:
        sys.stdout.write(buf.getvalue())
        return code

    from engine.checkpoint import load_checkpoint
    from engine.datasets import load_dataset
    from engine.errors import TermnistError
    from engine.insight.mistakes import worst_mistakes
    from engine.training import predict_images

    try:
        ckpt = load_checkpoint(args.model)
        dataset = load_dataset(args.dataset or ckpt.metadata.get("dataset") or ckpt.config.dataset,
                               data_dir=args.data)
        probs = predict_images(ckpt.model, dataset.x_test, dataset.max_value, ckpt.model.dtype)
    except TermnistError as exc:        # the base report loaded both already: unlikely
        _err(str(exc))
        return EXIT_ERROR
    mistakes = worst_mistakes(probs, dataset.y_test, n)
    if args.json:
        obj = json.loads(buf.getvalue())
        obj["mistakes"] = [m.to_json() for m in mistakes]
        print(json.dumps(obj), flush=True)
        return 0
    sys.stdout.write(buf.getvalue())
    print(f"{len(mistakes)} worst mistake(s) (most confident first; {int((probs.argmax(1) != dataset.y_test).sum()):,}"
          f" wrong of {len(dataset.y_test):,}):")
    for rank, m in enumerate(mistakes, 1):
        for line in mistake_lines(rank, m, dataset.x_test[m.index], dataset.max_value, dataset.class_names):
            print(line)
    return 0


def run_eval_confusion(args: argparse.Namespace, base: Any) -> int:
    """The eval report (``base``), then the confusion matrix written to ``--confusion FILE``
    (atomically; the path is checked before anything is computed). The line saying where it
    went is on stderr, so ``--json`` output stays one object."""
    path = getattr(args, "confusion", None)
    if not path:
        return int(base(args) or 0)
    from engine.errors import TermnistError
    from engine.insight.export import check_path

    try:
        check_path(path)
    except TermnistError as exc:
        _err(str(exc))
        return EXIT_ERROR
    code = int(base(args) or 0)
    if code != 0:
        return code

    from engine.checkpoint import load_checkpoint
    from engine.datasets import load_dataset
    from engine.insight.confusion import confusion
    from engine.insight.export import write_confusion
    from engine.training import predict_images

    try:
        ckpt = load_checkpoint(args.model)
        dataset = load_dataset(args.dataset or ckpt.metadata.get("dataset") or ckpt.config.dataset,
                               data_dir=args.data)
        probs = predict_images(ckpt.model, dataset.x_test, dataset.max_value, ckpt.model.dtype)
        view = confusion(dataset.y_test.astype("int64"), probs.argmax(axis=1), len(dataset.class_names),
                         tuple(dataset.class_names))
        written = write_confusion(path, view, model=str(args.model), dataset=dataset.name,
                                  test_images=int(len(dataset.y_test)))
    except TermnistError as exc:
        _err(str(exc))
        return EXIT_ERROR
    print(f"confusion matrix written to {written}", file=sys.stderr, flush=True)
    return 0


def mistake_lines(rank: int, m: Any, image: Any, max_value: float, names: Any) -> list[str]:
    """One mistake: a header with the top 3, then the image as ASCII art."""
    from tui.ascii_art import render_image

    top = "  ".join(f"{names[c]} {p:6.1%}" for c, p in m.top3)
    margin = 2 if image.shape[0] >= 20 else 0
    art = render_image(image, max_value, "ascii", width=14, height=7, margin=margin)
    head = f"#{rank:<3} test image {m.index}: true {names[m.true]}, predicted {names[m.pred]} ({m.confidence:.1%})"
    return [head, *(f"     {line}   {f'top 3: {top}' if i == 0 else ''}".rstrip() for i, line in enumerate(art)), ""]


def run_predict(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_checkpoint
    from engine.errors import TermnistError
    from engine.insight.confusion import class_names_for
    from engine.insight.drawing import EMPTY_MESSAGE, FIELD, predict_drawing
    from engine.insight.imagefile import read_image_file

    try:
        ckpt = load_checkpoint(args.model)
    except TermnistError as exc:
        _err(str(exc))
        return EXIT_ERROR
    model = ckpt.model
    if model.sizes[0] != FIELD * FIELD:
        side = int(round(model.sizes[0] ** 0.5))
        shape = f"{side}x{side} images" if side * side == model.sizes[0] else "inputs"
        _err(f"{args.model}: the model takes {model.sizes[0]} inputs ({shape}), but a file is prepared as a"
             f" {FIELD}x{FIELD} MNIST image ({FIELD * FIELD} inputs): use a model trained on a 28x28 dataset")
        return EXIT_ERROR
    n_classes = model.sizes[-1]
    names = list(ckpt.metadata.get("class_names") or [])
    if len(names) != n_classes:
        names = list(class_names_for(ckpt.metadata.get("dataset"), n_classes))
    status = 0
    for path in args.files:
        try:
            image = read_image_file(path)
        except TermnistError as exc:
            _err(str(exc))
            if args.json:
                print(json.dumps({"file": path, "error": str(exc)}), flush=True)
            status = EXIT_ERROR
            continue
        result = predict_drawing(model, image if image is not None else [[0.0]], max_value=1.0)
        if result.probs is None:
            if args.json:
                print(json.dumps({"file": path, "pred": None, "message": EMPTY_MESSAGE}), flush=True)
            else:
                print(f"{path}: no ink: {EMPTY_MESSAGE}", flush=True)
            continue
        probs = [float(p) for p in result.probs]
        order = sorted(range(n_classes), key=lambda c: -probs[c])[:3]
        label = int(order[0])
        if args.json:
            print(json.dumps({"file": path, "pred": label, "label": names[label], "probs": probs,
                              "top3": [[c, probs[c]] for c in order]}), flush=True)
        else:
            top = ", ".join(f"{names[c]} {probs[c]:.1%}" for c in order)
            print(f"{path}: {names[label]} ({probs[label]:.1%}); top 3: {top}", flush=True)
    return status
