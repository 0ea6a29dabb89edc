@traffic
Feature: Traffic shifting
  Istio task "Traffic Shifting": move reviews traffic from v1 to v3 by weights. A user
  keeps opening the product page as long as the split check needs: it fails a correct
  mesh at most once in a million and passes a split 10 points off at most once in a
  thousand, and prints the observed-versus-expected table with both bounds.

  Background:
    Given the Bookinfo sample is running
    And "destination-rule-all.yaml" is applied

  Scenario: Shift half of the reviews traffic to v3, then all of it
    Given I apply "virtual-service-all-v1.yaml"
    When a user opens the product page 20 times
    Then every page is served by reviews v1
    When I apply "virtual-service-reviews-50-v3.yaml"
    Then the client's sidecar routes reviews 50 % to subset v1 and 50 % to subset v3
    When a user keeps opening the product page
    Then the reviews versions are split v1 50% and v3 50%
    And the pages served by reviews v1 show no stars
    And the pages served by reviews v3 show red stars
    When I apply "virtual-service-reviews-v3.yaml"
    And a user opens the product page 20 times
    Then every page is served by reviews v3
    And every page shows red stars

  Scenario Outline: Canary step <old>% v1, <new>% v2
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
              subset: v1
            weight: <old>
          - destination:
              host: reviews
              subset: v2
            weight: <new>
      """
    When a user keeps opening the product page
    Then the reviews versions are split v1 <old>% and v2 <new>%

    Examples:
      | old | new |
      | 90  | 10  |
      | 80  | 20  |
      | 50  | 50  |
      | 0   | 100 |

  Scenario Outline: The sample weight file <file> splits v1 <old>% and v2 <new>%
    Given I apply "<file>"
    When a user keeps opening the product page
    Then the reviews versions are split v1 <old>% and v2 <new>%

    Examples:
      | file                               | old | new |
      | virtual-service-reviews-90-10.yaml | 90  | 10  |
      | virtual-service-reviews-80-20.yaml | 80  | 20  |

  Scenario: Blue-green switch and rollback
    Given I apply "virtual-service-all-v1.yaml"
    When a user opens the product page 20 times
    Then every page is served by reviews v1
    # Switch everything to green (v3) at once; no request may fail on the way.
    When I apply "virtual-service-reviews-v3.yaml"
    And a user opens the product page 20 times
    Then every request succeeded
    And every page is served by reviews v3
    # Roll back to blue.
    When I apply "virtual-service-all-v1.yaml"
    And a user opens the product page 20 times
    Then every request succeeded
    And every page is served by reviews v1
