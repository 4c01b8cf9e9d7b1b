"""The health hints' one-key fixes, applied to the settings form for the next run.

No Textual: ``apply_fix_to_form(code, form)`` works on anything with the settings form's
``values()`` / ``set_values()`` / ``base`` (tui.widgets.hyperparameter_form.HyperparameterForm,
or a test's stand-in). The Health view only *asks* for a fix (it posts ``ApplyFix(code)``);
the host decides: ``halve_lr`` on a live run goes to the live learning-rate change, every other
case comes here. ``halve_lr`` and ``double_lr`` fall back to the form's learning rate when no
run is live.
"""

from __future__ import annotations

from typing import Any, Protocol

from engine.insight.health import FIX_AUGMENT, FIX_HALVE_LR, FIX_LEAKY_RELU, FIX_RAISE_LR, FIX_WEIGHT_DECAY
from tui.forms import format_float

#: Weight decay set by ``add_weight_decay`` when the form has none (L2 coefficient, a common
#: choice for an MNIST MLP); a form that already has some gets it doubled.
WEIGHT_DECAY_START = 1e-4

#: What each fix does, for the key's label in the view.
FIX_LABELS: dict[str, str] = {
    FIX_HALVE_LR: "halve the learning rate",
    FIX_RAISE_LR: "double the learning rate (next run)",
    FIX_WEIGHT_DECAY: "add weight decay (next run)",
    FIX_AUGMENT: "augment with random shifts (next run)",
    FIX_LEAKY_RELU: "switch to leaky ReLU (next run)",
}


class FixError(ValueError):
    """A fix that cannot be applied to the form as it stands (the message says why)."""


class FormLike(Protocol):
    base: Any                                   # engine.config.TrainConfig: settings the form does not show

    def values(self) -> dict[str, str]: ...
    def set_values(self, values: dict[str, str]) -> None: ...


def _number(form: FormLike, name: str, label: str) -> float:
    text = form.values().get(name, "").strip()
    try:
        return float(text)
    except ValueError:
        raise FixError(f"{label} field holds {text!r}, not a number: fix it first") from None


def apply_fix_to_form(code: str, form: FormLike) -> str:
    """Change the settings ``form`` for the next run as fix ``code`` says; returns one line
    saying what changed ("Learning rate 0.05 -> 0.025 for the next run"). Raises FixError when
    the form's field is not a number, ValueError for an unknown code."""
    if code in (FIX_HALVE_LR, FIX_RAISE_LR):
        old = _number(form, "lr", "the Learning rate")
        new = old / 2 if code == FIX_HALVE_LR else old * 2
        form.set_values({"lr": format_float(new)})
        return f"Learning rate {format_float(old)} -> {format_float(new)} for the next run"
    if code == FIX_WEIGHT_DECAY:
        old = _number(form, "weight_decay", "the Weight decay")
        new = WEIGHT_DECAY_START if old <= 0 else old * 2
        form.set_values({"weight_decay": format_float(new)})
        return f"Weight decay {format_float(old)} -> {format_float(new)} for the next run"
    if code == FIX_LEAKY_RELU:
        old_act = form.values().get("activation", "")
        form.set_values({"activation": "leaky_relu"})
        return f"Activation {old_act or '?'} -> leaky_relu for the next run"
    if code == FIX_AUGMENT:
        old_aug = getattr(form.base, "augment", "none")
        form.base = form.base.replace(augment="shift")
        return f"Augmentation {old_aug} -> shift (up to {form.base.max_shift} px) for the next run"
    raise ValueError(f"unknown fix {code!r}; known: {', '.join(FIX_LABELS)}")
