@traffic
Feature: Request routing
  Istio task "Request Routing". Bookinfo runs three versions of reviews behind one
  Service: v1 shows no stars, v2 black stars, v3 red stars. First route every
  microservice to v1, then route by user identity.

  Background:
    Given the Bookinfo sample is running
    And "destination-rule-all.yaml" is applied

  Scenario: Without a VirtualService, reviews traffic is spread over every version
    # 60 page views all missing one of three versions: probability 3 x (2/3)^60 < 1e-10
    When a user opens the product page 60 times
    Then the pages are served by reviews v1, v2 and v3

  Scenario: Route all traffic to v1
    Given I apply "virtual-service-all-v1.yaml"
    When a user opens the product page 30 times
    Then every page is served by reviews v1
    And no page shows stars

  Scenario: jason is routed to reviews v2 and sees black stars
    Given I apply "virtual-service-all-v1.yaml"
    And I apply "virtual-service-reviews-test-v2.yaml"
    When jason logs in
    And jason opens the product page 20 times
    Then every page shows jason signed in
    And every page is served by reviews v2
    And every page shows black stars

  Scenario: An anonymous user still sees reviews v1
    Given I apply "virtual-service-all-v1.yaml"
    And I apply "virtual-service-reviews-test-v2.yaml"
    When an anonymous user opens the product page 20 times
    Then no page shows a signed-in user
    And every page is served by reviews v1
    And no page shows stars

  Scenario: Another signed-in user still sees reviews v1
    Given I apply "virtual-service-all-v1.yaml"
    And I apply "virtual-service-reviews-test-v2.yaml"
    When catface996 logs in
    And catface996 opens the product page 20 times
    Then every page shows catface996 signed in
    And every page is served by reviews v1
    And no page shows stars

  Scenario: After jason signs out the stars are gone
    Given I apply "virtual-service-all-v1.yaml"
    And I apply "virtual-service-reviews-test-v2.yaml"
    When jason logs in
    And jason opens the product page 5 times
    Then every page shows black stars
    When jason logs out
    And jason opens the product page 20 times
    Then no page shows a signed-in user
    And every page is served by reviews v1
    And no page shows stars
