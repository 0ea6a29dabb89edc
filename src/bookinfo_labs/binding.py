"""Binding the features' scenarios to pytest tests, with names that keep decimal points.

pytest-bdd's ``scenarios()`` names each test after its scenario (``make_python_name`` in
pytest_bdd/scenario.py, 9.0.1): spaces become "_" and every other non-word character is
dropped, so "A 0.5 s timeout on reviews" becomes ``test_a_05_s_timeout_on_reviews``, which
neither ``-k 0.5`` nor ``-k 0_5`` finds. :func:`scenarios` here binds the same scenarios, each
with pytest-bdd's own ``scenario`` decorator, under the same name except that a decimal
point is written "_": ``test_a_0_5_s_timeout_on_reviews``. A feature folder's test module
uses it in place of pytest-bdd's::

    from bookinfo_labs.binding import scenarios

    scenarios("traffic")
"""

from __future__ import annotations

import os
import re
import sys

from pytest_bdd import scenario
from pytest_bdd.exceptions import NoScenariosFound
from pytest_bdd.feature import get_features
from pytest_bdd.scenario import get_features_base_dir, make_python_name

# a "." between two digits: 0.5, 2.5, v1.2
_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")


def scenario_test_name(scenario_name: str) -> str:
    """pytest-bdd's test name for a scenario, with each decimal point kept as "_"."""
    return "test_" + make_python_name(_DECIMAL_POINT.sub("_", scenario_name))


def scenarios(*feature_paths: str, encoding: str = "utf-8",
              features_base_dir: str | None = None) -> None:
    """pytest-bdd's ``scenarios``: bind every scenario of these feature files or folders
    as a test of the calling module, named by :func:`scenario_test_name`; a name already
    taken gets "_1", "_2"... as pytest-bdd does."""
    caller = sys._getframe(1)
    namespace = caller.f_globals
    if features_base_dir is None:  # bdd_features_base_dir, else the caller's folder
        features_base_dir = get_features_base_dir(caller.f_code.co_filename)
    paths = [path if os.path.isabs(path) else os.path.abspath(os.path.join(features_base_dir, path))
             for path in feature_paths]
    found = False
    for feature in get_features(paths, encoding=encoding):
        for name in feature.scenarios:
            bind = scenario(feature.filename, name, encoding=encoding,
                            features_base_dir=features_base_dir)
            base = candidate = scenario_test_name(name)
            index = 0
            while candidate in namespace:
                index += 1
                candidate = f"{base}_{index}"
            namespace[candidate] = bind(_no_body)
            found = True
    if not found:
        raise NoScenariosFound(paths)


def _no_body() -> None:
    """The test body: the scenario's steps are the whole test."""
