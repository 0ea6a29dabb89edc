@security
Feature: Local rate limiting with Envoy's token bucket
  Istio has no rate limit resource: an AuthorizationPolicy has no request count (the
  survey's `request.count` is not an attribute, and istiod refuses it: see the
  authorization lab). The istio.io task puts Envoy's local rate limit filter in front of
  each productpage pod with an EnvoyFilter: a token bucket of 4 requests that gets 4 new
  tokens a minute. A request that finds the bucket empty gets 429 `local_rate_limited`
  and the header `x-local-rate-limit: true`, without reaching the app. Each pod has its
  own bucket, so two replicas let twice as many through.

  A bucket is created full with its filter, when the EnvoyFilter is applied, and Envoy
  refills it as time passes (one token every 15 s here): the checks read every request
  since the first batch, in order (4 got through, then only 429s), and are done within
  seconds, never waiting for a refill. The first request after a change may still meet
  the config before it, on a connection the client's sidecar opened earlier, which the
  proxy then closes. The survey's per-header and per-namespace limits are done with the
  filter's descriptors: a bucket for `User-Agent: Bot`, and one for clients whose mTLS
  identity is in namespace dev. A per-IP limit would need each client's address written
  in the config, so it is not a scenario here.

  Background:
    Given the bookinfo sample is running

  Scenario: Four requests a minute reach productpage; the fifth gets 429
    Given "local-rate-limit.yaml" is applied
    And the productpage proxy runs "envoy.filters.http.local_ratelimit" before "envoy.filters.http.router" on its inbound port 9080
    When I send 5 requests to "http://productpage:9080/productpage"
    Then the first 4 get 200 and the rest 429
    And some responses have status 429, body "local_rate_limited" and header "x-local-rate-limit: true"

  Scenario: The same bucket on productpage's routes instead of its listener
    # the filter carries only a stat prefix; the bucket is in typed_per_filter_config of
    # every route of the inbound virtual host inbound|http|9080
    Given "local-rate-limit-route.yaml" is applied
    And the productpage proxy runs "envoy.filters.http.local_ratelimit" before "envoy.filters.http.router" on its inbound port 9080
    When I send 5 requests to "http://productpage:9080/productpage"
    Then the first 4 get 200 and the rest 429
    And some responses have status 429, body "local_rate_limited" and header "x-local-rate-limit: true"

  Scenario: Requests from bots have a bucket of their own
    Given "local-rate-limit-bots.yaml" is applied
    And the productpage proxy runs "envoy.filters.http.local_ratelimit" before "envoy.filters.http.router" on its inbound port 9080
    When I send 4 requests to "http://productpage:9080/productpage" with header "User-Agent: Bot"
    Then the first 2 get 200 and the rest 429
    When I send 4 requests to "http://productpage:9080/productpage"
    Then every response has status 200

  Scenario: Requests from namespace dev have a bucket of their own
    # the sidecar of productpage puts the client's identity (spiffe://cluster.local/ns/dev/...)
    # in X-Forwarded-Client-Cert, which the filter's descriptor action reads
    Given the sleep sample is running in namespace dev
    And "local-rate-limit-namespaces.yaml" is applied
    And the productpage proxy runs "envoy.filters.http.local_ratelimit" before "envoy.filters.http.router" on its inbound port 9080
    When sleep in dev sends 4 requests to "http://productpage.default:9080/productpage"
    Then the first 2 get 200 and the rest 429
    When I send 4 requests to "http://productpage:9080/productpage"
    Then every response has status 200

  Scenario: Without a rate limit productpage answers every request
    When I send 6 requests to "http://productpage:9080/productpage"
    Then every response has status 200
    And the productpage proxy has no "envoy.filters.http.local_ratelimit" on its inbound port 9080
