"""What the app does, without Textual: each controller owns one kind of work and its state.

The App (tui/app.py) composes screens, binds keys and routes messages; the work lives here:

- ``datasets.DatasetCache``    the loaded dataset, where datasets come from, one load at a time
- ``run.RunController``        the training process, the run in progress (runner), pause/stop
- ``recovery.RecoveryController`` the recovery slot: claim, autosave (a writer thread), keep on exit
- ``downloads.DownloadController`` dataset downloads in a thread, cancellable
- ``hangup.HangupHandler``     SIGHUP/SIGTERM: keep the run, detach from a dead terminal, exit
- ``settings.SettingsController`` the remembered settings, written off the event loop

Each is unit-tested with plain callables (tests/tui/test_controllers.py); none imports
textual. Results reach the app through callables the app passes in (which post messages).
"""
