"""Binds every observability feature in this folder (pytest-bdd needs a test module)."""

from bookinfo_labs.binding import scenarios  # pytest-bdd's, keeping 0.5 as 0_5 in test names

scenarios("observability")
