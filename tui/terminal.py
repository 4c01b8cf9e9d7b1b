"""What the terminal can show: Unicode (box drawing, braille, half blocks) or ASCII only.

The locale is the only hint a program gets about the terminal's character set: ``LANG=C``
or ``LC_ALL=C`` (or an ISO-8859 locale) means the terminal may show the box drawing and
braille the app draws as garbage. Python itself cannot tell: since 3.7 it switches a C
locale to UTF-8 for its own I/O (PEP 538 locale coercion, PEP 540 UTF-8 mode), so
``locale.getpreferredencoding()`` says UTF-8 there; ``unicode_ok()`` reads the locale
variables the user set instead.

``$TERMNIST_ASCII=1`` forces ASCII, ``$TERMNIST_ASCII=0`` forces Unicode (a UTF-8 terminal
on a host with an odd locale).

In the app: ASCII mode is the App's CSS class ``-ascii`` (``ASCII_CLASS``): app.tcss turns
every border into ``ascii`` under it, and the widgets ask ``ascii_only(self)`` to draw
their chart, shading and progress bar with ASCII.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Mapping
from typing import Any

ENV = "TERMNIST_ASCII"
ASCII_CLASS = "-ascii"
# What the app draws beyond ASCII: box drawing, block elements, braille, arrows, the ellipsis.
SAMPLE = "\u2500\u2502\u256d\u2501\u2580\u2584\u2588\u28ff\u2191\u23ce\u2026"
_COERCED = ("C.UTF-8", "C.utf8", "UTF-8")          # what Python's PEP 538 coercion sets LC_CTYPE to


def unicode_ok(encoding: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """True when the terminal can be expected to show the app's Unicode characters.

    ``encoding`` given: whether it can encode them. Otherwise: $TERMNIST_ASCII when set, else
    the character set of the locale in the environment (LC_ALL, then LC_CTYPE, then LANG;
    none is the C locale).
    """
    if encoding is not None:
        return _encodes(encoding)
    env = os.environ if environ is None else environ
    forced = env.get(ENV, "").strip().lower()
    if forced in ("1", "yes", "true", "on"):
        return False
    if forced in ("0", "no", "false", "off"):
        return True
    return _encodes(locale_charset(environ))


def locale_charset(environ: Mapping[str, str] | None = None) -> str:
    """The character set the user's locale variables name ("UTF-8", "ISO-8859-1", "ascii")."""
    env = os.environ if environ is None else environ
    name = ""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(var, "")
        if var == "LC_CTYPE" and environ is None and _python_coerced(value):
            continue            # Python set it, not the user: look at LANG
        if value:
            name = value
            break
    name = name.split("@", 1)[0]
    if name in ("", "C", "POSIX"):
        return "ascii"
    if "." in name:
        return name.split(".", 1)[1]
    if name.replace("-", "").lower() == "utf8":     # macOS: LC_CTYPE=UTF-8
        return "UTF-8"
    return "ISO-8859-1"         # a bare language_TERRITORY: glibc's default for it is Latin-1


def _python_coerced(lc_ctype: str) -> bool:
    """Python switched a C locale to UTF-8 at start-up (it then sets LC_CTYPE itself)."""
    explicit = os.environ.get("PYTHONUTF8") or "utf8" in getattr(sys, "_xoptions", {})
    return bool(sys.flags.utf8_mode) and not explicit and lc_ctype in _COERCED


def _encodes(encoding: str) -> bool:
    try:
        SAMPLE.encode(codecs.lookup(encoding).name)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def ascii_only(node: Any) -> bool:
    """True when ``node``'s app draws with ASCII only (the App has ``ASCII_CLASS``)."""
    try:
        return bool(node.app.has_class(ASCII_CLASS))
    except Exception:  # noqa: BLE001 - no active app (a widget outside an app, in a test)
        return False


# Key names for the footer where Textual shows a symbol (App.get_key_display).
ASCII_KEYS = {"\u23ce": "Enter", "\u2191": "Up", "\u2193": "Down", "\u2190": "Left", "\u2192": "Right",
              "\u21e5": "Tab", "\u21e4": "S-Tab", "\u232b": "Bksp", "\u2326": "Del", "\u238b": "Esc"}


def ascii_key(display: str) -> str:
    """A footer key label with ASCII only: Textual's symbols spelled out ("⏎" -> "Enter")."""
    if display.isascii():
        return display
    for symbol, name in ASCII_KEYS.items():
        display = display.replace(symbol, name)
    return display.encode("ascii", "replace").decode("ascii")


# Box drawing -> ASCII, for renderers that draw their own frames (plotext).
BOX_TO_ASCII = str.maketrans({
    **dict.fromkeys("\u2500\u2501\u2504\u2505\u2508\u2509\u254c\u254d\u2550\u2574\u2576\u2578\u257a\u257c\u257e",
                    "-"),
    **dict.fromkeys("\u2502\u2503\u2506\u2507\u250a\u250b\u254e\u254f\u2551\u2575\u2577\u2579\u257b\u257d\u257f",
                    "|"),
    **{chr(c): "+" for c in range(0x250C, 0x254C)},
    **{chr(c): "+" for c in range(0x2552, 0x2570)},
    **dict.fromkeys("\u256d\u256e\u256f\u2570", "+"),
    **dict.fromkeys("\u2571", "/"), **dict.fromkeys("\u2572", "\\"), **dict.fromkeys("\u2573", "X"),
})
