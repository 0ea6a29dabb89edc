"""Binds every resilience feature in this folder (pytest-bdd needs a test module)."""

from pytest_bdd import scenarios

scenarios("resilience")
