"""Every timing band in the features says where it comes from.

A band is the mechanism's window (a delay, a timeout, tries and back-off, an ejection and
a sweep) widened by the measured scheduling noise; the feature states the mechanism in a
comment right above the step, and its description states the noise allowance, so a
reader can check the numbers and nobody widens a band to make a flake go away.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BAND = re.compile(r"(?:took|answers 200 again) (?P<low>[\d.]+) to (?P<high>[\d.]+) seconds")
NOISE_S = 0.25  # scripts/timing_noise.py measures what this must cover


def _bands():
    for path in sorted((ROOT / "features").rglob("*.feature")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if match := BAND.search(line):
                yield pytest.param(path, lines, number, match,
                                   id=f"{path.stem}:{number + 1}")


@pytest.mark.parametrize("path, lines, number, match", list(_bands()))
def test_a_band_states_its_mechanism_and_allows_the_measured_noise(path, lines, number, match):
    above = lines[number - 1].strip()
    above_the_when = lines[number - 2].strip() if number > 1 else ""
    assert above.startswith("#") or above_the_when.startswith("#"), (
        f"{path.name}:{number + 1}: say in a comment above the step which mechanism gives "
        f"{match['low']} to {match['high']} s")
    assert "Timing bands run from the mechanism's earliest answer" in path.read_text()
    low, high = float(match["low"]), float(match["high"])
    assert high - low >= NOISE_S, f"{path.name}:{number + 1}: narrower than the noise allowance"


def test_there_are_bands_to_check():
    assert len(list(_bands())) >= 15
