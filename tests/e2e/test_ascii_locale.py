"""End to end: `termnist` started in a real pty with a C locale draws with ASCII only
(tui.terminal.unicode_ok -> the app's -ascii class), and TERM=dumb is refused."""

from __future__ import annotations

import pytest

from engine.datasets import SAMPLE_DIR
from tests.e2e.test_sighup import PtyApp, environment, wait_until, write_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def box_or_braille(text: str) -> set[str]:
    return {c for c in text if 0x2500 <= ord(c) <= 0x257F or 0x2800 <= ord(c) <= 0x28FF}


@pytest.mark.parametrize(("locale", "ascii_only"), [({"LANG": "C", "LC_ALL": "C"}, True),
                                                    ({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}, False)])
def test_c_locale_gets_ascii_and_utf8_gets_unicode(tmp_path, locale, ascii_only):
    env = environment(tmp_path, **locale)
    write_settings(tmp_path / "config")
    app = PtyApp(["--data", str(SAMPLE_DIR)], env)
    try:
        wait_until(lambda: "Settings" in app.text() and "Quit" in app.text(), 60, "the first screen", app)
        app.send(b"\x11")                                   # Ctrl+Q: nothing runs, no question
        app.wait_exit(30)
        text = app.text()
    finally:
        app.close()
    if ascii_only:
        assert not box_or_braille(text), sorted(box_or_braille(text))
        assert "+- Settings -" in text
    else:
        assert box_or_braille(text)
