@resilience
Feature: Request timeouts
  Istio task "Request Timeouts". reviews calls ratings; a 2 s delay on ratings makes the
  page slow, and a timeout on reviews makes it fail fast instead. The timeout lives in
  the caller's sidecar (productpage's, for reviews).
  Timing bands run from the mechanism's earliest answer (less 10 ms of timer granularity)
  to its latest plus 0.25 s of scheduling noise: with one of this 2-core machine's cores
  kept busy, no answer came more than 18 ms after its mechanism's latest (75 answers over
  3 runs; docs/architecture.md#timing-bands says how to measure it again).

  Background:
    Given the Bookinfo sample is running
    And "destination-rule-all.yaml" is applied
    And I apply "virtual-service-all-v1.yaml"
    And I apply "reviewsv2.yaml"
    And I apply:
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
            delay:
              percent: 100
              fixedDelay: 2s
          route:
          - destination:
              host: ratings
              subset: v1
      """

  Scenario: A 2 s delay on ratings: the page is slow but complete
    When a user opens the product page
    Then every page shows black stars
    # the 2 s delay, then everything answers at once
    And every page took 1.99 to 2.25 seconds

  Scenario: A 0.5 s timeout on reviews: the reviews error in about 1 s
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
          timeout: 0.5s
      """
    When a user opens the product page
    Then every page shows the reviews error
    # productpage tries reviews twice, each cut at 0.5 s: 1 s
    And every page took 0.99 to 1.25 seconds

  Scenario: Seen directly, reviews answers 504 "upstream request timeout" after 0.5 s
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
          timeout: 0.5s
      """
    When I send 3 requests to "http://reviews:9080/reviews/0"
    Then every response has status 504 and body "upstream request timeout"
    # the route timeout
    And every response took 0.49 to 0.75 seconds

  Scenario: The workshop's 1 s timeout: the page fails instead of waiting
    Given I apply "timeout.yaml"
    When a user opens the product page
    Then every page shows the reviews error
    # productpage tries reviews twice, each cut at 1 s: 2 s
    And every page took 1.99 to 2.25 seconds
    When I send 2 requests to "http://reviews:9080/reviews/0"
    Then every response has status 504 and body "upstream request timeout"
    # the route timeout
    And every response took 0.99 to 1.25 seconds

  Scenario: A timeout longer than the delay changes nothing
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
          timeout: 5s
      """
    When a user opens the product page
    Then every page shows black stars
    # the 2 s delay, well within the 5 s timeout
    And every page took 1.99 to 2.25 seconds
