"""Steps every lab uses: sample apps, applying and deleting manifests."""

from pytest_bdd import given, parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.manifests import ManifestError


@given(parsers.re(r"the (?P<sample>[\w-]+) sample is running"))
def sample_is_running(lab, sample):
    lab.deploy(sample.lower())


# Quoted values are [^"]+ (never a quote): no step text can match two definitions.
@given(parsers.re(r'I apply "(?P<name>[^"]+)"'))
@when(parsers.re(r'I apply "(?P<name>[^"]+)"'))
def apply_manifest(lab, name):
    lab.apply_file(name)


@given(parsers.re(r'"(?P<name>[^"]+)" is applied'))
def manifest_is_applied(lab, name):
    lab.apply_file(name)


@given("I apply:")
@when("I apply:")
def apply_inline(lab, docstring):
    lab.apply_text(docstring)


@when(parsers.re(r'I delete "(?P<name>[^"]+)"'))
def delete_manifest(lab, name):
    lab.delete_file(name)


@when(parsers.re(r'I try to apply "(?P<name>[^"]+)"'))
def try_to_apply(lab, name):
    try:
        lab.apply_file(name)
    except ManifestError as exc:
        lab.error = exc


@when("I try to apply:")
def try_to_apply_inline(lab, docstring):
    try:
        lab.apply_text(docstring)
    except ManifestError as exc:
        lab.error = exc


@then(parsers.re(r'applying it fails at "(?P<path>[^"]+)" mentioning "(?P<text>[^"]+)"'))
def apply_failed(lab, path, text):
    applied = sorted({m.source for m in lab.manifests})
    assert lab.error is not None, (
        f"no error: the manifest was applied (applied so far: {applied}), but it should have "
        f"been rejected at {path!r} mentioning {text!r}")
    lab.explain(explain.validate_command, lab.error.source)
    assert lab.error.path == path and text in str(lab.error), (
        f"expected a rejection at {path!r} mentioning {text!r}; got one at {lab.error.path!r}: "
        f"{lab.error}")
    print(f"rejected as expected: {lab.error}")


@then(parsers.re(r'applying it warned that subset "(?P<subset>[^"]+)" of host "(?P<host>[^"]+)" '
                 r"is not defined"))
def warned_about_subset(lab, subset, host):
    wanted = f"subset {subset!r} of host {host!r} is not defined"
    # On a cluster the warning is istioctl analyze's IST0101 (analyzers/virtualservice/
    # destinationrules.go): Referenced host+subset in destinationrule not found: "<host>+<subset>"
    analyzer = f'host+subset in destinationrule not found: "{host}+{subset}"'
    lab.explain(explain.analyze_command)
    assert any(wanted in w or analyzer in w for w in lab.warnings), (
        f"expected a warning containing {wanted!r}; warnings were: {lab.warnings or 'none'}")


@then(parsers.re(r"istioctl analyze reports (?P<code>IST\d{4}) (?P<text>.+)"))
def analyze_reports(lab, code, text):
    """The analyzer's code and message, as the local mesh quotes it or istioctl prints it
    (``Error [IST0101] (VirtualService default/x) Referenced gateway not found: "y"``)."""
    lab.explain(explain.analyze_command)
    assert any(code in w and text in w for w in lab.warnings), (
        f"expected {code} {text}; warnings were: {lab.warnings or 'none'}")
