"""Terminals that cannot show the app: TERM=dumb is refused; a locale without Unicode gets
ASCII borders, chart, shading, progress bar, scrollbars and key names (tui.terminal)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tui.conftest import press, settle, wait_for
from tests.tui.screen_text import screen_text
from tui.screens.digit_detail import DigitScreen
from tui.screens.help import HelpScreen
from tui.terminal import BOX_TO_ASCII, ascii_key, locale_charset, unicode_ok

REPO = Path(__file__).resolve().parents[2]
SMALL = {"hidden": "16", "epochs": "3", "batch_size": "64", "val_size": "100", "lr": "0.1"}


def box_or_braille(text: str) -> set[str]:
    return {c for c in text if 0x2500 <= ord(c) <= 0x257F or 0x2800 <= ord(c) <= 0x28FF}


# ----------------------------------------------------------------------------- the locale
@pytest.mark.parametrize(("env", "ok"), [
    ({"LANG": "en_US.UTF-8"}, True),
    ({"LANG": "C.UTF-8"}, True),
    ({"LANG": "de_DE.utf8"}, True),
    ({"LC_CTYPE": "UTF-8"}, True),                             # macOS
    ({"LANG": "C"}, False),
    ({"LANG": "POSIX"}, False),
    ({}, False),                                               # nothing set: the C locale
    ({"LC_ALL": "C", "LANG": "en_US.UTF-8"}, False),           # LC_ALL wins
    ({"LC_CTYPE": "C", "LANG": "en_US.UTF-8"}, False),         # then LC_CTYPE
    ({"LC_ALL": "", "LANG": "en_US.UTF-8"}, True),             # empty means unset
    ({"LANG": "de_DE.ISO-8859-1"}, False),
    ({"LANG": "de_DE"}, False),                                # glibc: Latin-1
    ({"LANG": "sr_RS.UTF-8@latin"}, True),
    ({"LANG": "C", "TERMNIST_ASCII": "0"}, True),              # forced either way
    ({"LANG": "en_US.UTF-8", "TERMNIST_ASCII": "1"}, False),
])
def test_unicode_ok_reads_the_locale_variables(env, ok):
    assert unicode_ok(environ=env) is ok


@pytest.mark.parametrize(("encoding", "ok"), [("utf-8", True), ("UTF8", True), ("ascii", False),
                                              ("latin-1", False), ("ANSI_X3.4-1968", False),
                                              ("no-such-codec", False)])
def test_unicode_ok_for_an_encoding(encoding, ok):
    assert unicode_ok(encoding) is ok


def test_locale_charset():
    assert locale_charset({"LANG": "en_US.UTF-8"}) == "UTF-8"
    assert locale_charset({"LANG": "C"}) == "ascii"


@pytest.mark.parametrize(("env", "ok"), [({"LANG": "C"}, False), ({"LC_ALL": "C"}, False), ({}, False),
                                         ({"LANG": "C.UTF-8"}, True), ({"LC_ALL": "C.UTF-8"}, True)])
def test_unicode_ok_sees_through_pythons_utf8_coercion(env, ok):
    """Python makes a C locale UTF-8 for itself (PEP 538/540): the answer must not follow it."""
    out = subprocess.run([sys.executable, "-c", "from tui.terminal import unicode_ok; print(unicode_ok())"],
                         cwd=REPO, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env},
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == str(ok)


def test_every_box_drawing_character_has_an_ascii_stand_in():
    text = "".join(chr(c) for c in range(0x2500, 0x2580))
    assert text.translate(BOX_TO_ASCII).isascii()


def test_key_names():
    assert ascii_key("\u23ce") == "Enter" and ascii_key("^q") == "^q" and ascii_key("\u2191") == "Up"
    assert ascii_key("\u2603").isascii()


# ----------------------------------------------------------------------------- TERM=dumb
@pytest.mark.parametrize("term", ["dumb", None])
def test_cli_refuses_a_dumb_terminal_without_writing_escapes(tmp_path, term):
    """In a real pty (so the TTY check passes): exit 2, the hint, not one escape sequence."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "TERMNIST_CONFIG_DIR": str(tmp_path / "config"), "TERMNIST_STATE_DIR": str(tmp_path / "state"),
           "TERMNIST_LOG_DIR": str(tmp_path / "log")}
    if term is not None:
        env["TERM"] = term
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli"], cwd=REPO, env=env,
                            stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(main, 4096)
            except OSError:              # EIO: the child closed the pty
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
        status = proc.wait(timeout=30)
    text = out.decode("utf-8", "replace")
    assert status == 2, text
    assert "termnist train" in text and "TERM" in text
    assert b"\x1b" not in out


# ----------------------------------------------------------------------------- the app in ASCII
async def test_ascii_app_shows_no_box_drawing_or_braille_at_80x24(make_app, synthetic):
    app = make_app(synthetic, trainer="thread", ascii_only=True)
    seen: dict[str, str] = {}
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        seen["form"] = screen_text(app)
        app.form.set_values(SMALL)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the run to end")
        await pilot.pause(0.4)                          # a chart redraw
        assert app.chart.redraws >= 1
        seen["chart and log"] = screen_text(app)
        await pilot.press("f3")
        await pilot.pause(0.1)
        seen["digits"] = screen_text(app)
        await pilot.press("u")                          # no half blocks to switch to
        await pilot.pause(0.05)
        assert app.preview.shading == "ascii"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DigitScreen), what="zoom")
        seen["zoom"] = screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DigitScreen), what="close")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        seen["help"] = screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="close")
        app.notify("something failed", severity="error")
        await pilot.pause(0.2)
        seen["toast"] = screen_text(app)
    assert "+- Settings ---" in seen["form"]              # the borders are there, in ASCII
    assert "Enter Zoom" in seen["digits"] and "Shade" not in seen["digits"]
    assert "o validation" in seen["chart and log"] and "=" in seen["chart and log"]
    for name, text in seen.items():
        assert not box_or_braille(text), (name, box_or_braille(text), text)
        assert text.isascii(), (name, sorted({c for c in text if not c.isascii()}), text)


async def test_ascii_app_at_120x40_and_the_data_panel(make_app, synthetic):
    app = make_app(synthetic, ascii_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for i in range(40):                            # enough log for a scrollbar
            app.epoch_log.write_event(f"line {i} " + "x" * 100)
        await pilot.pause(0.1)
        wide = screen_text(app)
        await pilot.press("ctrl+d")
        await pilot.pause(0.3)
        data = screen_text(app)
    for text in (wide, data):
        assert not box_or_braille(text) and text.isascii(), sorted({c for c in text if not c.isascii()})


async def test_unicode_app_still_draws_unicode(make_app, synthetic):
    """The check above can fail: the default app draws round borders."""
    app = make_app(synthetic)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert box_or_braille(screen_text(app))
        assert app.preview.shading == app.preview.mode
