"""Every step line of every feature matches exactly one step definition of its type.

pytest-bdd picks among several matching definitions by lookup order, so a step text that
two patterns accept works by accident and breaks silently when a module moves. This reads
the features as pytest-bdd does (Scenario Outlines expanded, And/But taking the previous
step's type) and asks each registered definition's parser whether it matches.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pytest_bdd.parser import FeatureParser
from pytest_bdd.steps import StepFunctionContext, step_function_context_registry

import conftest

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ROOT / "features"


def step_definitions() -> list[StepFunctionContext]:
    """The step definitions of the step modules conftest.py registers."""
    modules = [name for name in conftest.pytest_plugins if name.split(".")[0] == "steps"]
    for name in modules:
        importlib.import_module(name)
    return [context for context in list(step_function_context_registry.values())
            if context.step_func.__module__ in modules]


def feature_steps() -> list[tuple[str, int, str, str]]:
    """(feature file, line, type, text) of every step, once per Examples row."""
    found = []
    for path in sorted(FEATURES.rglob("*.feature")):
        feature = FeatureParser(str(path.parent), path.name).parse()
        for template in feature.scenarios.values():
            contexts = [c for examples in template.examples for c in examples.as_contexts()]
            for context in contexts or [{}]:
                for step in template.render(context).steps:
                    found.append((str(path.relative_to(ROOT)), step.line_number, step.type, step.name))
    return sorted(set(found))


def matches(definitions: list[StepFunctionContext], type_: str, text: str) -> list[str]:
    return [f"{c.step_func.__module__}.{c.step_func.__name__} ({c.parser.name!r})"
            for c in definitions
            if c.type in (None, type_) and c.parser.is_matching(text)]


def test_the_features_have_steps_and_the_modules_have_definitions():
    steps, definitions = feature_steps(), step_definitions()
    assert len(steps) > 100, f"only {len(steps)} step lines read from {FEATURES}"
    assert {c.type for c in definitions} >= {"given", "when", "then"}, definitions
    # Outline rows are expanded: no "<param>" is left in a step text.
    assert not [s for s in steps if "<" in s[3] and ">" in s[3]], "unexpanded outline steps"


def test_every_step_line_matches_exactly_one_definition_of_its_type():
    definitions = step_definitions()
    problems = []
    for path, line, type_, text in feature_steps():
        found = matches(definitions, type_, text)
        if len(found) != 1:
            listed = "".join(f"\n    {f}" for f in found) or " none"
            problems.append(f"{path}:{line}: {type_.title()} {text!r} matches{listed}")
    assert not problems, f"{len(problems)} ambiguous or unknown step lines:\n" + "\n".join(problems)


@pytest.mark.parametrize("type_, text", [
    ("when", 'I send 3 requests to "http://x:1/a" with header "end-user: jason"'),
    ("then", "every response has status 200 and an empty body"),
])
def test_the_checker_sees_an_ambiguity_it_is_shown(type_, text):
    """The matcher itself: a text two broad patterns would take is reported as two."""
    from pytest_bdd import parsers
    broad = [StepFunctionContext(type=type_, step_func=print, parser=parsers.parse(p))
             for p in ("I send {count:d} requests to \"{url}\"", "every response has status {status}",
                       "{anything}")]
    assert len(matches(broad, type_, text)) >= 2
