@observability @needs-prometheus
Feature: Metrics in Prometheus
  Workshop lab 9.2 and survey L25: every proxy keeps Istio's standard metrics
  (istio_requests_total, istio_request_duration_milliseconds, ...) with Istio's labels,
  the Prometheus addon scrapes them, and we ask its HTTP API with PromQL as the handouts
  do. Counters only grow, so each check looks at what the scenario's own traffic added
  since every proxy was last scraped; it waits for the records' flush and two scrape
  intervals, twice over (Prometheus scrapes every 15 s on a cluster, as the addon sets
  it, and every 2 s on the local mesh). The shares are checked on the client's side by the
  traffic-shifting lab's split test; Prometheus must then have counted exactly what the
  client saw.

  Background:
    Given the Bookinfo sample is running
    And "destination-rule-all.yaml" is applied

  Scenario: Requests to reviews show up in istio_requests_total
    Given Prometheus has scraped every proxy
    When a user opens the product page 10 times
    Then the query 'istio_requests_total{destination_service=~"reviews.*", response_code="200"}' grows by 10 for each reporter
    And its series carry Istio's standard labels

  Scenario: Per-version counts after traffic shifting agree with the split the client saw
    Given I apply "virtual-service-reviews-50-v3.yaml"
    And Prometheus has scraped every proxy
    When a user keeps opening the product page
    Then the reviews versions are split v1 50% and v3 50%
    # every page names the reviews pod that served it: Prometheus must count the same
    And Prometheus counts as many requests per reviews version as the pages showed

  Scenario: The 5xx share of ratings after a fault-injection abort
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: ratings
      spec:
        hosts:
        - ratings
        http:
        - fault:
            abort:
              percentage:
                value: 50
              httpStatus: 500
          route:
          - destination:
              host: ratings
              subset: v1
      """
    And Prometheus has scraped every proxy
    When I keep sending requests to "http://ratings:9080/ratings/0"
    Then the statuses are split 500 50% and 200 50%
    And Prometheus counts as many requests to ratings per response code as the client saw
