"""Subcommands of the ``termnist`` command line. Each module has ``register(subparsers)``."""


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""
