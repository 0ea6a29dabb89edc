"""Every manifest the labs apply is valid against the typed models."""

from pathlib import Path

import pytest

from bookinfo_labs.manifests import MANIFESTS_ROOT, load_file

# istioctl's input, never applied through a mesh
NOT_APPLIED = {"istio/istio-operator.yaml"}
FILES = sorted(str(p.relative_to(MANIFESTS_ROOT)) for p in MANIFESTS_ROOT.rglob("*.yaml"))


@pytest.mark.parametrize("name", [f for f in FILES if f not in NOT_APPLIED])
def test_manifest_is_valid(name):
    assert load_file(Path(MANIFESTS_ROOT, name))


def test_lab_file_names_are_unique_so_features_can_name_them_alone():
    names = [Path(f).name for f in FILES]
    assert sorted(set(names)) == sorted(names)
