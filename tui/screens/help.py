"""Help screen: keys, what the panels show, data credits."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.terminal import ascii_only
from tui.widgets.ascii import ascii_scrollbars

KEYS = """\
Keys
  F5          train with the form's settings
  F6          pause / resume           F7      stop (keeps the weights)
  Ctrl+S      save the model           Ctrl+O  load a model
  F2          chart: loss <-> accuracy
  F3          next panel (a small terminal shows one panel at a time)
  Ctrl+D, F4  data: where the dataset was found; train on the bundled
              sample, download the full set, or choose a directory
  F1 or ?     this help                Ctrl+Q  quit (asks while training)
  Tab         next field or panel; Enter or arrows open a choice list

Live changes (while a run trains or is paused)
  * /         learning rate x2 / /2 (also in a form field)
  Enter       in Learning rate, Momentum, Weight decay or Batch size:
              apply the typed value to the run now (a bad one is refused)
  Ctrl+N      paused: one step          Ctrl+T  paused: one epoch

Digit preview (when focused)
  ] PageDown  next page                [ PageUp  previous page
  arrows      select a digit           Enter   large view + probabilities
  m           mistakes only            u       ASCII <-> Unicode blocks
  Captions: guess, confidence, (true label); X marks a mistake.

Runs panel (F3 to it; every recorded run, newest first)
  space       select a run: its validation curve joins the overlay chart
  F2          overlay: validation loss <-> accuracy
  s / S       sort by the next column / reverse (or click a column header)
  Ctrl+F      filter (every word must match; Enter or Escape returns)
  d           diff: the settings that differ between two selected runs
  f           its settings into the form   m   load its model
  t           train on from its checkpoint r   read the run store again
  x, Delete   delete it and its checkpoint (asks first)
  n           edit its note                +   star / unstar

Sweep panel (F3 until Sweep)
  F5          start a sweep over the form's settings   F7  stop it
  p           chart the next parameter (table focused)
  b / m       the best trial's settings into the form / load its model
  Enter       the selected trial's settings into the form

Form
  Fields are checked as you type; a bad value shows why below the field
  and F5 refuses to start. While training, Enter applies a learning rate,
  momentum, weight decay or batch size to the run; other fields apply to
  the next run. Settings are remembered between sessions.
"""

CREDITS = """\
Data
  MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges
  (CC BY-SA 3.0). Without a downloaded copy termnist uses a small bundled
  sample of MNIST and says so; Ctrl+D (or `termnist download mnist`) gets
  the full set.
  Fashion-MNIST: Zalando Research (MIT). KMNIST: CODH (CC BY-SA 4.0).
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 88; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $panel; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss(None)", "Close")]

    def __init__(self, extra: str = "") -> None:
        super().__init__()
        self.extra = extra

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(KEYS, markup=False)
            yield Static(CREDITS, markup=False)
            if self.extra:
                yield Static(self.extra, markup=False)
            yield Static("Escape closes this help.", markup=False)

    def on_mount(self) -> None:
        if ascii_only(self):
            ascii_scrollbars(self.query_one(VerticalScroll))
