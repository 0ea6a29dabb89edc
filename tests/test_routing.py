"""VirtualService and DestinationRule semantics, without sockets (docs/facts.md#routing)."""

import textwrap

import pytest

from bookinfo_labs.local import routing
from bookinfo_labs.local.config import ConfigStore
from bookinfo_labs.manifests import parse_text
from bookinfo_labs.mesh import ResourceKey

REVIEWS = "reviews.default.svc.cluster.local"


def store_with(*documents: str) -> ConfigStore:
    store = ConfigStore()
    for text in documents:
        manifests = parse_text(textwrap.dedent(text))
        store.apply([(ResourceKey(m.kind, m.namespace or "default", m.name), m) for m in manifests])
    return store


def vs(rules: str, name: str = "reviews", extra: str = "") -> str:
    return f"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: {name}
        spec:
          hosts: [reviews]{extra}
          http:
{textwrap.indent(textwrap.dedent(rules), " " * 10)}
        """


def request(path="/reviews/0", method="GET", headers=None, labels=None):
    return routing.RequestView(method=method, path=path, headers=headers or {},
                               authority="reviews:9080", port=9080,
                               source_labels=labels or {"app": "curl"})


def subset_of(store, req):
    entry = routing.virtual_service_for(store, REVIEWS)
    rule = routing.select_route(entry, req)
    return None if rule is None else rule.route[0].destination.subset


def test_first_matching_rule_wins_and_a_rule_without_match_is_the_default():
    store = store_with(vs("""
        - match: [{headers: {end-user: {exact: jason}}}]
          route: [{destination: {host: reviews, subset: v2}}]
        - match: [{headers: {end-user: {prefix: ja}}}]
          route: [{destination: {host: reviews, subset: v3}}]
        - route: [{destination: {host: reviews, subset: v1}}]
    """))
    assert subset_of(store, request(headers={"end-user": "jason"})) == "v2"
    assert subset_of(store, request(headers={"end-user": "jane"})) == "v3"
    assert subset_of(store, request(headers={"end-user": "Jason"})) == "v1"  # case-sensitive
    assert subset_of(store, request()) == "v1"


def test_no_matching_rule_means_no_route():
    store = store_with(vs("""
        - match: [{uri: {prefix: /health}}]
          route: [{destination: {host: reviews, subset: v1}}]
    """))
    assert subset_of(store, request("/reviews/0")) is None
    assert subset_of(store, request("/healthz")) == "v1"  # a plain string prefix


@pytest.mark.parametrize("match, path, expected", [
    ("{uri: {exact: /reviews/0}}", "/reviews/0?x=1", True),  # exact ignores the query
    ("{uri: {exact: /reviews/0}}", "/reviews/01", False),
    ("{uri: {regex: '/reviews/[0-9]'}}", "/reviews/0", True),
    ("{uri: {regex: '/reviews'}}", "/reviews/0", False),  # regex must match the whole path
    ("{uri: {prefix: /REVIEWS}, ignoreUriCase: true}", "/reviews/0", True),
    ("{uri: {prefix: /REVIEWS}}", "/reviews/0", False),
    ("{queryParams: {debug: {exact: ''}}}", "/reviews/0?debug", True),
    ("{queryParams: {debug: {exact: 'on'}}}", "/reviews/0?debug=off", False),
    ("{queryParams: {debug: {}}}", "/reviews/0?debug=1", True),
    ("{queryParams: {debug: {}}}", "/reviews/0", False),
    ("{method: {exact: POST}}", "/reviews/0", False),
])
def test_uri_query_and_method_matches(match, path, expected):
    store = store_with(vs(f"""
        - match: [{match}]
          route: [{{destination: {{host: reviews, subset: v2}}}}]
        - route: [{{destination: {{host: reviews, subset: v1}}}}]
    """))
    assert (subset_of(store, request(path)) == "v2") is expected


def test_conditions_in_one_match_are_anded_and_match_blocks_are_ored():
    store = store_with(vs("""
        - match:
          - {headers: {end-user: {exact: jason}}, uri: {prefix: /reviews}}
          - {headers: {x-canary: {}}}
          route: [{destination: {host: reviews, subset: v2}}]
        - route: [{destination: {host: reviews, subset: v1}}]
    """))
    assert subset_of(store, request("/reviews/0", headers={"end-user": "jason"})) == "v2"
    assert subset_of(store, request("/health", headers={"end-user": "jason"})) == "v1"
    assert subset_of(store, request("/health", headers={"x-canary": ""})) == "v2"


def test_without_headers_inverts_and_a_missing_header_counts_as_empty():
    store = store_with(vs("""
        - match: [{withoutHeaders: {end-user: {exact: jason}}}]
          route: [{destination: {host: reviews, subset: v3}}]
        - route: [{destination: {host: reviews, subset: v1}}]
    """))
    assert subset_of(store, request()) == "v3"
    assert subset_of(store, request(headers={"end-user": "bob"})) == "v3"
    assert subset_of(store, request(headers={"end-user": "jason"})) == "v1"


def test_source_labels_select_which_clients_a_match_applies_to():
    store = store_with(vs("""
        - match: [{sourceLabels: {app: productpage}}]
          route: [{destination: {host: reviews, subset: v2}}]
        - route: [{destination: {host: reviews, subset: v1}}]
    """))
    assert subset_of(store, request(labels={"app": "productpage", "version": "v1"})) == "v2"
    assert subset_of(store, request(labels={"app": "curl"})) == "v1"


def test_a_virtual_service_bound_to_a_gateway_does_not_apply_to_sidecars():
    store = store_with(vs("""
        - route: [{destination: {host: reviews, subset: v2}}]
    """, extra="\n          gateways: [bookinfo-gateway]"))
    assert routing.virtual_service_for(store, REVIEWS) is None
    assert routing.virtual_service_for(store, REVIEWS, "default/bookinfo-gateway") is not None


def test_the_oldest_virtual_service_for_a_host_wins_and_reapplying_keeps_its_age():
    first = vs("- route: [{destination: {host: reviews, subset: v1}}]", name="first")
    second = vs("- route: [{destination: {host: reviews, subset: v2}}]", name="second")
    store = store_with(first, second)
    assert routing.virtual_service_for(store, REVIEWS).key.name == "first"
    store.apply([(ResourceKey("VirtualService", "default", "first"),
                  parse_text(textwrap.dedent(first))[0])])
    assert routing.virtual_service_for(store, REVIEWS).key.name == "first"


class CountingRandom:
    """Returns every point of the weight range once: the exact shares of the intervals."""

    def __init__(self):
        self.next = 0

    def randrange(self, total):
        value, self.next = self.next % total, self.next + 1
        return value


@pytest.mark.parametrize("weights, expected", [
    ((90, 10), {"v1": 90, "v2": 10}),
    ((1, 3), {"v1": 25, "v2": 75}),  # weight / sum, no need to add up to 100
    ((0, 100), {"v2": 100}),  # weight 0 is dropped
])
def test_weighted_destinations_are_picked_in_proportion(weights, expected):
    store = store_with(vs(f"""
        - route:
          - {{destination: {{host: reviews, subset: v1}}, weight: {weights[0]}}}
          - {{destination: {{host: reviews, subset: v2}}, weight: {weights[1]}}}
    """))
    rule = routing.select_route(routing.virtual_service_for(store, REVIEWS), request())
    rng, seen = CountingRandom(), {}
    total = sum(weights)
    for _ in range(100 if total == 100 else total * 25):
        subset = routing.pick_destination(rule.route, rng).destination.subset
        seen[subset] = seen.get(subset, 0) + 1
    scale = sum(seen.values()) / 100
    assert {k: v / scale for k, v in seen.items()} == expected


def test_weights_summing_to_60_are_accepted_and_split_50_50():
    """Istio 1.22-1.28 only refuses a total weight of 0 (validation.go
    validateHTTPRouteDestinations); Envoy shares by weight/total, so 30/30 is 50/50."""
    store = store_with(vs("""
        - route:
          - {destination: {host: reviews, subset: v1}, weight: 30}
          - {destination: {host: reviews, subset: v2}, weight: 30}
    """))  # parse_text validates: a sum of 60 is accepted
    rule = routing.select_route(routing.virtual_service_for(store, REVIEWS), request())
    rng, seen = CountingRandom(), {"v1": 0, "v2": 0}
    for _ in range(600):  # every point of the total weight, ten times over
        seen[routing.pick_destination(rule.route, rng).destination.subset] += 1
    assert seen == {"v1": 300, "v2": 300}


def test_subsets_come_from_the_first_destination_rule_that_defines_them():
    store = store_with("""
        apiVersion: networking.istio.io/v1alpha3
        kind: DestinationRule
        metadata: {name: reviews1}
        spec:
          host: reviews
          subsets: [{name: v1, labels: {version: v2}}]
        """)
    assert routing.subset_labels(store, REVIEWS, "v1") == {"version": "v2"}
    assert routing.subset_labels(store, REVIEWS, "v3") is None
    assert routing.subset_labels(store, "ratings.default.svc.cluster.local", "v1") is None
