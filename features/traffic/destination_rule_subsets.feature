@traffic
Feature: DestinationRule subsets
  A subset is only a name for a label selector; a VirtualService decides which subset a
  request uses, and a DestinationRule decides which pods that subset means.

  Background:
    Given the Bookinfo sample is running

  Scenario: A DestinationRule alone changes nothing
    Given I apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: DestinationRule
      metadata:
        name: reviews
      spec:
        host: reviews
        subsets:
        - name: v1
          labels:
            version: v1
      """
    When a user opens the product page 60 times
    Then the pages are served by reviews v1, v2 and v3

  Scenario: A subset named v1 that selects version v2 sends "v1" traffic to v2
    Given I apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: DestinationRule
      metadata:
        name: reviews1
      spec:
        host: reviews
        subsets:
        - name: v1
          labels:
            version: v2
      """
    And I apply "virtual-service-reviews-test-v2.yaml"
    When a user opens the product page 20 times
    Then every page is served by reviews v2
    And every page shows black stars

  # On a cluster the warnings come from istioctl analyze (make kind-up downloads it).
  @needs-istioctl
  Scenario: A VirtualService applied without its DestinationRule
    When I apply "virtual-service-all-v1.yaml"
    Then applying it warned that subset "v1" of host "productpage" is not defined
    And applying it warned that subset "v1" of host "reviews" is not defined
    # The client's sidecar has no cluster for subset v1: Envoy answers 503 (NC).
    When a user opens the product page 5 times
    Then every response has status 503 and an empty body
    When I send 5 requests to "http://reviews:9080/reviews/0"
    Then every response has status 503 and an empty body
    # The fix the handout gives: apply the destination rules first.
    When I apply "destination-rule-all.yaml"
    And a user opens the product page 20 times
    Then every page is served by reviews v1
