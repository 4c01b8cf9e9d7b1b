"""termnist's user interfaces: the command line (``tui.cli``) and the Textual app (``tui.app``).

Kept import-light: ``termnist --help`` and ``termnist train`` must not pay for Textual.
"""
