@traffic
Feature: Header-based routing
  A VirtualService matches request headers exactly, by prefix or by a regular expression
  (which must match the whole value); the first matching rule wins. Requests go straight
  from the client pod to reviews, as the notes' in-mesh probe does.

  Background:
    Given the Bookinfo sample is running
    And "destination-rule-all.yaml" is applied

  Scenario Outline: end-user "<user>" against the jason rule is served by reviews <version>
    Given I apply "virtual-service-reviews-test-v2.yaml"
    When I send 10 requests to "http://reviews:9080/reviews/0" with header "end-user: <user>"
    Then every response is served by reviews <version>

    Examples:
      | user   | version |
      | jason  | v2      |
      | Jason  | v1      |
      | jason2 | v1      |
      | bob    | v1      |

  Scenario: Without the end-user header the default rule applies
    Given I apply "virtual-service-reviews-jason-v2-v3.yaml"
    When I send 10 requests to "http://reviews:9080/reviews/0"
    Then every response is served by reviews v3

  Scenario Outline: A <kind> match "<pattern>" on end-user "<user>" is served by reviews <version>
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
        - match:
          - headers:
              end-user:
                <kind>: "<pattern>"
          route:
          - destination:
              host: reviews
              subset: v2
        - route:
          - destination:
              host: reviews
              subset: v1
      """
    When I send 10 requests to "http://reviews:9080/reviews/0" with header "end-user: <user>"
    Then every response is served by reviews <version>

    Examples:
      | kind   | pattern | user   | version |
      | exact  | jason   | jason  | v2      |
      | prefix | ja      | jason  | v2      |
      | prefix | ja      | bob    | v1      |
      | regex  | j.*n    | jason  | v2      |
      | regex  | j.*n    | jasonx | v1      |

  Scenario: A header must be absent for a withoutHeaders rule
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
        - match:
          - withoutHeaders:
              end-user: {}
          route:
          - destination:
              host: reviews
              subset: v3
        - route:
          - destination:
              host: reviews
              subset: v2
      """
    When I send 10 requests to "http://reviews:9080/reviews/0"
    Then every response is served by reviews v3
    When I send 10 requests to "http://reviews:9080/reviews/0" with header "end-user: anyone"
    Then every response is served by reviews v2

  Scenario: No rule matches: the sidecar answers 404 with an empty body
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
        - match:
          - uri:
              prefix: /health
          route:
          - destination:
              host: reviews
              subset: v1
      """
    When I send 5 requests to "http://reviews:9080/reviews/0"
    Then every response has status 404 and an empty body
