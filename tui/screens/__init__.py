"""Modal screens: help, confirm, path prompt, digit detail."""
