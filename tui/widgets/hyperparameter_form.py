"""The hyperparameter form: preset, dataset and the training settings, validated as typed."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static

from engine.training import TrainConfig
from tui import forms
from tui.data_status import option_label, state_note
from tui.guard import guarded
from tui.terminal import ascii_only
from tui.widgets.ascii import ascii_scrollbars, ascii_select_arrows


class FieldValidator(Validator):
    """Textual validator for one form field; the reason comes from tui.forms."""

    def __init__(self, name: str, form: HyperparameterForm) -> None:
        super().__init__()
        self.field_name = name
        self._form = form

    def validate(self, value: str) -> ValidationResult:
        reason = forms.field_error(self.field_name, value, self._form.base, self._form.n_train)
        return self.success() if reason is None else self.failure(reason)


class HyperparameterForm(VerticalScroll):
    """Fields for a TrainConfig. The app reads it with `get_config()` and fills it with
    `set_config()`; the form never touches a training session."""

    DEFAULT_CSS = """
    HyperparameterForm { height: 1fr; padding: 0 1; }
    HyperparameterForm .field-row { height: 1; margin-bottom: 0; }
    HyperparameterForm .field-label { width: 16; height: 1; }
    HyperparameterForm .field-row:focus-within > .field-label { text-style: bold reverse; }
    HyperparameterForm .field-row Input, HyperparameterForm .field-row Select { width: 1fr; }
    HyperparameterForm .field-error { color: $error; text-style: bold; height: auto; padding-left: 16; }
    HyperparameterForm .field-error.-empty { display: none; }
    HyperparameterForm #preset-summary { color: $text-muted; height: auto; padding-left: 16; }
    HyperparameterForm #preset-summary.-empty { display: none; }
    HyperparameterForm #dataset-note { color: $warning; height: auto; padding-left: 16; }
    HyperparameterForm #dataset-note.-empty { display: none; }
    """

    class Changed(Message):
        """A field changed (valid or not); ``errors`` maps fields to reasons; ``field``: which
        one (None: several, e.g. a preset)."""

        def __init__(self, errors: dict[str, str], field: str | None = None) -> None:
            super().__init__()
            self.errors = errors
            self.field = field

    class Submitted(Message):
        """Enter in field ``field`` (its text ``text``): during a run, a live change."""

        def __init__(self, field: str, text: str) -> None:
            super().__init__()
            self.field = field
            self.text = text

    class DatasetChanged(Message):
        """The user picked another dataset."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, presets: dict[str, tuple[str, TrainConfig]], datasets: Iterable[str], *,
                 id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.presets = presets                  # name -> (one-line summary, config)
        self.datasets = tuple(datasets)
        self.base = TrainConfig()               # settings the form does not show come from here
        self.errors: dict[str, str] = {}
        self.n_train: int | None = None         # size of the loaded training set, if known
        self.dataset_states: dict[str, str] = {}  # name -> found/sample/missing/unavailable

    def on_mount(self) -> None:
        if ascii_only(self):                    # an ASCII-only terminal (tui.terminal)
            ascii_scrollbars(self)
            ascii_select_arrows(self)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label("Preset", classes="field-label")
            yield Select([(n, n) for n in self.presets], prompt="choose to fill the fields",
                         allow_blank=True, compact=True, id="field-preset")
        yield Static("", id="preset-summary", classes="-empty", markup=False)
        for field in forms.FIELDS:
            with Horizontal(classes="field-row"):
                yield Label(field.label, classes="field-label")
                yield self._make_input(field)
            yield Static("", id=f"error-{field.name}", classes="field-error -empty", markup=False)
            if field.name == "dataset":
                yield Static("", id="dataset-note", classes="-empty", markup=False)

    def _make_input(self, field: forms.Field) -> Input | Select:
        wid = f"field-{field.name}"
        if field.kind == "choice":
            return Select([(c, c) for c in forms.choices(field.name)], allow_blank=False,
                          compact=True, id=wid)
        if field.name == "dataset" and self.datasets:
            return Select(self._dataset_options(), allow_blank=False, compact=True, id=wid)
        return Input(placeholder=field.hint, validators=[FieldValidator(field.name, self)],
                     compact=True, id=wid, select_on_focus=False)

    def _dataset_options(self) -> list[tuple[str, str]]:
        return [(option_label(d, self.dataset_states.get(d)), d) for d in self.datasets]

    # -- reading --------------------------------------------------------------------------------
    def values(self) -> dict[str, str]:
        out = {}
        for field in forms.FIELDS:
            widget = self.query_one(f"#field-{field.name}")
            if isinstance(widget, Select):
                value = widget.value
                out[field.name] = "" if value is Select.NULL else str(value)
            else:
                out[field.name] = widget.value  # type: ignore[attr-defined]
        return out

    def get_config(self) -> tuple[TrainConfig | None, dict[str, str]]:
        """The config the fields describe, or the reason each bad field is bad (also shown)."""
        config, errors = forms.build_config(self.values(), self.base, self.n_train)
        self.show_errors(errors)
        return config, errors

    # -- writing ---------------------------------------------------------------------------------
    def set_config(self, config: TrainConfig) -> None:
        """Fill every field from ``config`` (its hidden settings become the base)."""
        self.base = config
        self.set_values(forms.config_to_values(config))

    def set_values(self, values: dict[str, str]) -> None:
        for name, text in values.items():
            if name not in forms.FIELDS_BY_NAME:
                continue
            widget = self.query_one(f"#field-{name}")
            if isinstance(widget, Select):
                options = forms.choices(name) if name != "dataset" else self.datasets
                if text in options:
                    widget.value = text
            else:
                widget.value = text  # type: ignore[attr-defined]
        if "dataset" in values and self.dataset_states:
            self._show_dataset_note()
        self.show_errors({})

    def set_dataset_states(self, states: dict[str, str]) -> None:
        """Mark each dataset choice as here, sample only, or needing a download (the app asks
        the engine's search); the chosen one's state is explained under the field."""
        self.dataset_states = dict(states)
        try:
            select = self.query_one("#field-dataset", Select)
        except Exception:  # noqa: BLE001 - no dataset choice (no registry)
            return
        value = select.value
        with self.prevent(Select.Changed):       # relabelling is not a new choice
            select.set_options(self._dataset_options())
            if value is not Select.NULL and value in self.datasets:
                # set_options picked the first option; when that is the value already, the
                # shown label is stale: step away and back so it is redrawn.
                other = next((d for d in self.datasets if d != value), None)
                if other is not None and select.value == value:
                    select.value = other
                select.value = value
        self._show_dataset_note()

    def _show_dataset_note(self) -> None:
        name = self.values().get("dataset", "")
        text = state_note(name, self.dataset_states.get(name)) if name else ""
        note = self.query_one("#dataset-note", Static)
        note.update(text)
        note.set_class(not text, "-empty")

    def apply_preset(self, name: str) -> None:
        summary, config = self.presets[name]
        keep_dataset = self.values().get("dataset")
        self.set_config(config)
        # A preset is a recipe; keep the dataset the user picked unless the preset names its own.
        if keep_dataset and config.dataset == "mnist" and keep_dataset != "mnist":
            self.set_values({"dataset": keep_dataset})
        note = self.query_one("#preset-summary", Static)
        note.update(summary)
        note.set_class(not summary, "-empty")

    def show_errors(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        for field in forms.FIELDS:
            reason = errors.get(field.name, "")
            label = self.query_one(f"#error-{field.name}", Static)
            label.update(f"^ {reason}" if reason else "")
            label.set_class(not reason, "-empty")

    def show_error(self, name: str, reason: str) -> None:
        self.show_errors({**self.errors, name: reason})

    # -- events -----------------------------------------------------------------------------------
    @guarded
    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        name = (event.input.id or "").removeprefix("field-")
        if name not in forms.FIELDS_BY_NAME:
            return
        result = event.validation_result
        errors = dict(self.errors)
        if result is not None and not result.is_valid:
            errors[name] = "; ".join(result.failure_descriptions)
        else:
            errors.pop(name, None)
        self.show_errors(errors)
        self.post_message(self.Changed(errors, name))

    @guarded
    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = (event.input.id or "").removeprefix("field-")
        if name in forms.FIELDS_BY_NAME:
            event.stop()
            self.post_message(self.Submitted(name, event.value))

    def show_value(self, name: str, text: str) -> None:
        """Show ``text`` in field ``name`` without it counting as an edit (a live change that
        took effect: the form shows the settings in effect)."""
        widget = self.query_one(f"#field-{name}")
        if isinstance(widget, Input):
            with self.prevent(Input.Changed):
                widget.value = text
            self.show_errors({k: v for k, v in self.errors.items() if k != name})

    @guarded
    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "field-preset":
            if event.value is not Select.NULL and str(event.value) in self.presets:
                self.apply_preset(str(event.value))
            return
        if event.select.id == "field-dataset" and event.value is not Select.NULL:
            if self.dataset_states:
                self._show_dataset_note()
            self.post_message(self.DatasetChanged(str(event.value)))
        self.post_message(self.Changed(dict(self.errors), (event.select.id or "").removeprefix("field-") or None))
