"""The training process's wire messages: typed, frozen, picklable; errors cross intact."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from engine import errors, wire
from engine import events as ev


def _message_classes() -> list[type]:
    return [obj for obj in vars(wire).values()
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == wire.__name__]


def test_every_message_is_a_frozen_dataclass_that_survives_pickle():
    classes = _message_classes()
    assert {wire.Ping, wire.Open, wire.Control, wire.Reply, wire.RunEvent, wire.Final, wire.End} <= set(classes)
    for cls in classes:
        assert cls.__dataclass_params__.frozen, cls
    msg = wire.RunEvent(3, ev.Stopped(epoch=1, step=40))
    assert pickle.loads(pickle.dumps(msg)) == msg
    ctl = wire.Control(3, wire.Action.ACK)
    assert pickle.loads(pickle.dumps(ctl)) == ctl


def test_errors_cross_as_the_engines_own():
    err = wire.rebuild_error(wire.ErrorInfo.of(errors.ConfigError("batch_size", "too big")))
    assert isinstance(err, errors.ConfigError) and err.field == "batch_size" and err.reason == "too big"
    err = wire.rebuild_error(wire.ErrorInfo.of(errors.DatasetNotFoundError("gone")))
    assert type(err) is errors.DatasetNotFoundError and str(err) == "gone"
    assert type(wire.rebuild_error(wire.ErrorInfo.of(MemoryError("oom")))) is MemoryError
    err = wire.rebuild_error(wire.ErrorInfo.of(KeyError("x")))
    assert isinstance(err, wire.TrainerProcessError) and "KeyError" in str(err) and err.details


def test_the_cli_names_every_event_in_json():
    from tui.commands.train import _JSON_NAMES

    events = {cls for cls in vars(ev).values()
              if isinstance(cls, type) and issubclass(cls, ev.Event) and cls is not ev.Event}
    assert events == set(_JSON_NAMES)


@pytest.mark.parametrize("action", list(wire.Action))
def test_control_actions_are_distinct(action):
    assert wire.Action(action.value) is action
