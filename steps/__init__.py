"""Step definitions, thin and grouped by domain; registered from conftest.py."""
