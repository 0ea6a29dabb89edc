"""Every manifest the labs apply is valid against the typed models."""

from pathlib import Path

import pytest

from bookinfo_labs.manifests import MANIFESTS_ROOT, ManifestError, load_file, parse_text

# istioctl's input, never applied through a mesh
NOT_APPLIED = {"istio/istio-operator.yaml"}
FILES = sorted(str(p.relative_to(MANIFESTS_ROOT)) for p in MANIFESTS_ROOT.rglob("*.yaml"))


@pytest.mark.parametrize("name", [f for f in FILES if f not in NOT_APPLIED])
def test_manifest_is_valid(name):
    assert load_file(Path(MANIFESTS_ROOT, name))


def test_lab_file_names_are_unique_so_features_can_name_them_alone():
    names = [Path(f).name for f in FILES]
    assert sorted(set(names)) == sorted(names)


# --------------------------------------------------------------------------- duplicates

_REVIEWS_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews{namespace}
spec:
  hosts: [reviews]
  http:
  - route: [{{destination: {{host: reviews, subset: {subset}}}}}]
"""


def test_the_same_object_twice_in_one_file_is_refused_naming_both_lines():
    text = (_REVIEWS_VS.format(namespace="", subset="v1") + "---\n"
            + _REVIEWS_VS.format(namespace="", subset="v3"))
    with pytest.raises(ManifestError) as err:
        parse_text(text, "twice.yaml")
    message = str(err.value)
    assert err.value.line == 10 and err.value.resource == 'VirtualService "reviews"'
    assert "twice.yaml:10: VirtualService \"reviews\": " in message
    assert "defined twice, at lines 1 and 10" in message
    assert "kubectl apply would apply both, the second overwriting the first" in message
    assert message.endswith("Nothing from twice.yaml was applied.")


def test_the_same_name_in_another_namespace_or_of_another_kind_is_not_a_duplicate():
    text = "---\n".join([
        _REVIEWS_VS.format(namespace="", subset="v1"),
        _REVIEWS_VS.format(namespace="\n  namespace: other", subset="v1"),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: reviews}\nspec: {host: reviews}\n",
    ])
    assert [(m.kind, m.namespace) for m in parse_text(text, "three.yaml")] == [
        ("VirtualService", None), ("VirtualService", "other"), ("DestinationRule", None)]


def test_an_inline_block_with_the_same_object_twice_is_refused():
    text = _REVIEWS_VS.format(namespace="\n  namespace: default", subset="v1") + "---\n" + \
        _REVIEWS_VS.format(namespace="\n  namespace: default", subset="v1")
    with pytest.raises(ManifestError, match=r"<inline>:11: .*lines 1 and 11"):
        parse_text(text)
