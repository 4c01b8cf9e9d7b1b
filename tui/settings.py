"""The app's remembered settings: one small JSON file in the user's config directory.

``$TERMNIST_CONFIG_DIR`` (or the ``directory`` argument) overrides
``platformdirs.user_config_dir("termnist")`` -- tests point it at a temporary directory.
Writes are atomic (temporary file + ``os.replace``); a missing, unreadable or corrupt
file reads as "no settings", never as an error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write

ENV_VAR = "TERMNIST_CONFIG_DIR"
FILENAME = "settings.json"
VERSION = 1


def config_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Where settings live: ``directory``, else $TERMNIST_CONFIG_DIR, else the platform's."""
    if directory is not None:
        return Path(directory)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("termnist"))


def settings_path(directory: str | os.PathLike[str] | None = None) -> Path:
    return config_dir(directory) / FILENAME


def load_settings(directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The saved settings, or {} when there are none or the file is unusable."""
    path = settings_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    form = data.get("form")
    ui = data.get("ui")
    base = data.get("base")
    return {
        "form": {str(k): str(v) for k, v in form.items()} if isinstance(form, dict) else {},
        "ui": dict(ui) if isinstance(ui, dict) else {},
        "base": dict(base) if isinstance(base, dict) else {},
    }


def save_settings(settings: dict[str, Any], directory: str | os.PathLike[str] | None = None) -> Path:
    """Write ``settings`` atomically; raises OSError when the directory is unwritable."""
    path = settings_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"version": VERSION, **settings}, indent=2, sort_keys=True)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(payload)
    return path
