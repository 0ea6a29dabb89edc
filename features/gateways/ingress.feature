@gateways
Feature: Bookinfo through the ingress gateway
  The ingress gateway is an Envoy at the mesh's edge. A Gateway opens a port on it for some
  hosts; a VirtualService bound to that Gateway (its `gateways` field) routes what arrives.
  bookinfo-gateway.yaml opens port 8080 for every host and routes the product page, its
  static files, the login and logout pages and the products API to productpage. From
  outside the mesh a learner reaches it at http://$INGRESS_HOST:$INGRESS_PORT (on the local
  mesh http://127.0.0.1:8080 when that port is free).

  Background:
    Given the bookinfo sample is running

  Scenario: Before any Gateway, the ingress gateway listens on no port
    When I send 1 request to "/productpage" through the ingress gateway
    Then the ingress gateway refuses the connection

  Scenario: The product page is served through the ingress gateway
    Given "bookinfo-gateway.yaml" is applied
    When a user opens the product page through the ingress gateway 3 times
    Then every response has status 200
    And every response shows "The Comedy of Errors"

  Scenario: The page's static files and the products API are routed too
    Given "bookinfo-gateway.yaml" is applied
    When I send 1 request to "/productpage" through the ingress gateway
    Then every static file the page links to is served through the ingress gateway
    When I send 2 requests to "/api/v1/products" through the ingress gateway
    Then every response has status 200
    And every response shows "The Comedy of Errors"

  Scenario: A user signs in and out through the ingress gateway
    Given "bookinfo-gateway.yaml" is applied
    When jason logs in through the ingress gateway
    And jason opens the product page through the ingress gateway
    Then every page shows jason signed in
    When jason logs out through the ingress gateway
    And jason opens the product page through the ingress gateway
    Then no page shows a signed-in user

  Scenario: A path the gateway's VirtualService does not route gets the gateway's 404
    Given "bookinfo-gateway.yaml" is applied
    # productpage serves /health, but bookinfo's VirtualService routes only its five paths
    When I send 2 requests to "/health" through the ingress gateway
    Then every response has status 404 from "istio-envoy"
    When I send 2 requests to "http://productpage:9080/health"
    Then every response has status 200

  Scenario: A Gateway without a VirtualService answers every path with 404
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: bookinfo-gateway
      spec:
        selector:
          istio: ingressgateway
        servers:
        - port:
            number: 8080
            name: http
            protocol: HTTP
          hosts:
          - "*"
      """
    When I send 2 requests to "/productpage" through the ingress gateway
    Then every response has status 404 from "istio-envoy"

  Scenario: The routing lab's rules apply to pages seen through the gateway
    Given "bookinfo-gateway.yaml" is applied
    And "destination-rule-all.yaml" is applied
    And I apply "virtual-service-reviews-v3.yaml"
    When a user opens the product page through the ingress gateway 5 times
    Then every page is served by reviews v3
    And every page shows red stars
