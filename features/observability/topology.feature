@observability @needs-prometheus
Feature: The service graph
  Workshop lab 9.3 and survey L28: Kiali draws the application's topology from
  Prometheus' istio_requests_total (its versionedApp graph: an edge from each calling app
  version to each called app version, with its request rate and error share). The graph
  here is computed the same way from the requests the scenario's traffic added, once
  they are all counted (see the metrics feature for the waits).

  Background:
    Given the Bookinfo sample is running
    And "destination-rule-all.yaml" is applied

  Scenario: With all reviews traffic on v2, the graph shows who calls whom
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: reviews
      spec:
        hosts:
        - reviews
        http:
        - route:
          - destination:
              host: reviews
              subset: v2
      """
    And Prometheus has scraped every proxy
    When a user opens the product page 20 times
    Then the service graph shows productpage calls reviews v2, productpage calls details v1, reviews v2 calls ratings v1, nothing calls reviews v1, nothing calls reviews v3
    And no edge of the service graph has errors

  Scenario: An abort on ratings shows as errors on the edge that calls it
    Given I apply "virtual-service-all-v1.yaml"
    And I apply "virtual-service-reviews-test-v2.yaml"
    And I apply "virtual-service-ratings-test-abort.yaml"
    And Prometheus has scraped every proxy
    When jason logs in
    And jason opens the product page 10 times
    # jason's reviews come from v2, whose sidecar answers every ratings call with a 500
    Then the service graph shows productpage calls reviews v2, reviews v2 calls ratings, nothing calls reviews v1
    And the service graph shows every call from reviews v2 to ratings failing
