@security
Feature: Global rate limiting with a rate limit service
  A global limit is shared by every replica: the ingress gateway asks a rate limit
  service (envoyproxy/ratelimit, over gRPC) about each request before routing it, and the
  service counts requests per descriptor in fixed windows. The istio.io task gives the
  gateway Envoy's rate limit filter (domain `ratelimit`) and sends the request's path as
  the descriptor PATH; the service allows `/productpage` once a minute, the products API
  (PATH=api, sent by a patch on the route named `api`) twice, any other path 100 times.
  Over the limit the gateway answers 429 with `x-envoy-ratelimited: true`; with
  `failure_mode_deny` a service it cannot reach means 500 for everything.

  A window starts at each minute of the clock and counts from zero: a scenario sends its
  batches within a few seconds, after making sure the minute has time left, and each
  scenario spends a descriptor of its own (/productpage, api), so none inherits another's
  count (a second run within the same minute on one cluster would: its Redis keeps
  counting). On the local mesh the service counts in its own memory, not in Redis (the
  sample's redis pod runs a stand-in that answers PING only).

  Background:
    Given the bookinfo sample is running
    And the ratelimit sample is running
    And "bookinfo-gateway.yaml" is applied

  Scenario: The product page is allowed once a minute
    Given "filter-ratelimit.yaml" is applied
    And "filter-ratelimit-svc.yaml" is applied
    And the istio-ingressgateway proxy runs "envoy.filters.http.ratelimit" before "envoy.filters.http.router" on its outbound port 8080
    And the current minute has at least 10 seconds left
    When I send 2 requests to "/productpage" through the ingress gateway
    Then the first request gets 200 and the rest 429
    And some responses have status 429, body "" and header "x-envoy-ratelimited: true"

  Scenario: The products API shares one descriptor for every product
    Given "bookinfo-api-route.yaml" is applied
    And "filter-ratelimit.yaml" is applied
    And "filter-ratelimit-svc.yaml" is applied
    And "filter-ratelimit-api.yaml" is applied
    And the istio-ingressgateway proxy runs "envoy.filters.http.ratelimit" before "envoy.filters.http.router" on its outbound port 8080
    And the current minute has at least 10 seconds left
    When I send 3 requests to "/api/v1/products/1" through the ingress gateway
    Then the first 2 get 200 and the rest 429
    When I send 2 requests to "/api/v1/products/2" through the ingress gateway
    Then every response has status 429

  Scenario: Without its rate limit service the gateway turns every request away
    # the filter asks a subset of the service that no pod belongs to: every call fails
    Given "ratelimit-unavailable.yaml" is applied
    And "filter-ratelimit-svc.yaml" is applied
    When I send 3 requests to "/productpage" through the ingress gateway
    Then every response has status 500
