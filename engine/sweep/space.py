"""The search space of a sweep: one ``ParamSpec`` per hyperparameter, parsed from ``--param`` text.

    lr=0.001:0.5:log          float range, log-uniform
    momentum=0.8:0.99         float range, uniform
    epochs=1:5:int            int range (inclusive)
    batch_size=32,64,128      a list (categorical)
    hidden=64,128-64,256-128  a list of layer stacks (``-`` separates layers; ``none`` for no hidden layer)

Pure Python (no Optuna import): the CLI parses and reports errors before loading anything.
``SpaceError(name, reason)`` names the parameter; the CLI turns it into a usage error (exit 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.errors import TermnistError

#: TrainConfig fields a sweep may search, and their type (what a list's items are parsed as).
SWEEPABLE: dict[str, type] = {
    "lr": float, "momentum": float, "weight_decay": float, "batch_size": int, "hidden": tuple,
    "activation": str, "optimizer": str, "loss": str, "init": str, "schedule": str, "gamma": float,
    "step_epochs": int, "warmup_epochs": float, "augment": str, "max_shift": int, "init_std": float,
    "dtype": str,
}


class SpaceError(TermnistError):
    """A malformed ``--param``; ``.name`` is the parameter (or the text when no name was given)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"--param {name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter.

    kind "categorical": ``choices`` (values as Optuna stores them: numbers or strings; a
    ``hidden`` choice is the text "128-64", see ``config_value``). kind "float"/"int":
    ``low``..``high`` inclusive, ``log`` for a log-uniform range.
    """

    name: str
    kind: str                       # "categorical" | "float" | "int"
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"name": self.name, "kind": self.kind, "choices": list(self.choices)}
        return {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high, "log": self.log}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ParamSpec:
        if d["kind"] == "categorical":
            return cls(d["name"], "categorical", choices=tuple(d["choices"]))
        return cls(d["name"], d["kind"], low=d["low"], high=d["high"], log=bool(d.get("log")))

    def text(self) -> str:
        """Back to ``--param`` form."""
        if self.kind == "categorical":
            return f"{self.name}={','.join(str(c) for c in self.choices)}"
        suffix = ":int" if self.kind == "int" else ""
        return f"{self.name}={self.low:g}:{self.high:g}{suffix}{':log' if self.log else ''}"

    def distribution(self) -> Any:
        """The Optuna distribution (imports Optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def grid_values(self) -> list[Any]:
        """The values a grid search tries: the list, or every integer of an int range."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1))
        raise SpaceError(self.name, f"a float range ({self.text().split('=', 1)[1]}) cannot be searched by"
                                    " --sampler grid: give a list of values (a,b,c)")


def config_value(name: str, value: Any) -> Any:
    """A sampled value as TrainConfig takes it ("128-64" -> (128, 64) for hidden)."""
    if name == "hidden":
        return _layers(str(value), name)
    return value


def _layers(text: str, name: str) -> tuple[int, ...]:
    text = text.strip()
    if text.lower() in ("none", "0"):
        return ()
    parts = text.split("-")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise SpaceError(name, f"{text!r} is not a layer stack (write sizes joined by '-', e.g. 128-64)")
    return tuple(int(p) for p in parts)


def _number(text: str, typ: type, name: str) -> Any:
    try:
        value = typ(text)
    except ValueError:
        kind = "a whole number" if typ is int else "a number"
        raise SpaceError(name, f"expected {kind}, got {text!r}") from None
    if typ is float and not math.isfinite(value):
        raise SpaceError(name, f"expected a finite number, got {text!r}")
    return value


def parse_param(text: str) -> ParamSpec:
    """``NAME=VALUES`` -> ParamSpec. Raises SpaceError naming the parameter."""
    if "=" not in text:
        raise SpaceError(text, "expected NAME=VALUES (e.g. lr=0.001:0.5:log or batch_size=32,64,128)")
    name, _, values = (s.strip() for s in text.partition("="))
    if not name:
        raise SpaceError(text, "no parameter name before '='")
    if name not in SWEEPABLE:
        raise SpaceError(name, f"unknown parameter {name!r}; choose from {', '.join(SWEEPABLE)}")
    typ = SWEEPABLE[name]
    if not values:
        raise SpaceError(name, "empty list of values")
    if ":" in values:
        return _parse_range(name, typ, values)
    items = [v.strip() for v in values.split(",")]
    if any(v == "" for v in items):
        raise SpaceError(name, f"empty value in the list {values!r}")
    choices: list[Any] = []
    for item in items:
        if typ is tuple:
            choices.append("-".join(str(h) for h in _layers(item, name)) or "none")
        elif typ in (int, float):
            choices.append(_number(item, typ, name))
        else:
            choices.append(item)
    if len(set(choices)) != len(choices):
        raise SpaceError(name, f"repeated value in the list {values!r}")
    return ParamSpec(name, "categorical", choices=tuple(choices))


def _parse_range(name: str, typ: type, values: str) -> ParamSpec:
    parts = [p.strip() for p in values.split(":")]
    flags = [p.lower() for p in parts[2:]]
    if len(parts) < 2 or not parts[0] or not parts[1] or any(f not in ("log", "int") for f in flags) \
            or len(set(flags)) != len(flags):
        raise SpaceError(name, f"bad range {values!r}: write LO:HI, LO:HI:log, LO:HI:int or LO:HI:int:log")
    if typ not in (int, float):
        raise SpaceError(name, f"{name} takes a list of values (a,b,c), not a range")
    is_int = "int" in flags or typ is int
    if typ is float and "int" in flags:
        raise SpaceError(name, f"{name} is a real number: drop ':int'")
    low = _number(parts[0], int if is_int else float, name)
    high = _number(parts[1], int if is_int else float, name)
    log = "log" in flags
    if low > high:
        raise SpaceError(name, f"range {values!r}: low {parts[0]} is greater than high {parts[1]}")
    if log and low <= 0:
        raise SpaceError(name, f"log range {values!r}: low must be > 0, got {parts[0]}")
    return ParamSpec(name, "int" if is_int else "float", low=low, high=high, log=log)


def parse_space(texts: Iterable[str]) -> tuple[ParamSpec, ...]:
    """Every ``--param``; a parameter given twice is an error."""
    specs: list[ParamSpec] = []
    for text in texts:
        spec = parse_param(text)
        if any(s.name == spec.name for s in specs):
            raise SpaceError(spec.name, "given twice")
        specs.append(spec)
    return tuple(specs)


def check_against(specs: Iterable[ParamSpec], base: Any) -> None:
    """Check every value of the space against TrainConfig's validation (``base.replace``), so a
    value the engine would refuse (lr=-1, batch_size=0, an unknown activation) is a usage error
    now rather than a failed trial later."""
    from engine.errors import ConfigError

    for spec in specs:
        probes = list(spec.choices) if spec.kind == "categorical" else [spec.low, spec.high]
        for value in probes:
            try:
                base.replace(**{spec.name: config_value(spec.name, value)})
            except ConfigError as exc:
                raise SpaceError(spec.name, f"value {value!r}: {exc.reason}") from None


__all__ = ["SWEEPABLE", "ParamSpec", "SpaceError", "check_against", "config_value", "parse_param", "parse_space"]
