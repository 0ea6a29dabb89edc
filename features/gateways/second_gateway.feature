@gateways
Feature: A second Gateway on the ingress gateway
  The workshop adds test-gateway beside bookinfo-gateway and publishes the details service
  through it. test-gateway's server port 80 is the gateway Service's port whose targetPort
  is 8080, the port bookinfo-gateway names directly: both Gateways share the gateway's
  8080 listener, and the routes of their VirtualServices for host "*" are merged.

  Background:
    Given the bookinfo sample is running
    And "bookinfo-gateway.yaml" is applied
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: test-gateway
      spec:
        selector:
          istio: ingressgateway
        servers:
        - port:
            number: 80
            name: http
            protocol: HTTP
          hosts:
          - "*"
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: test-gateway
      spec:
        hosts:
        - "*"
        gateways:
        - test-gateway
        http:
        - match:
          - uri:
              prefix: /details
          - uri:
              exact: /health
          route:
          - destination:
              host: details
              port:
                number: 9080
      """

  Scenario: The details service answers through the second Gateway
    When I send 2 requests to "/details/0" through the ingress gateway
    Then every response has status 200
    And every response shows "William Shakespeare"
    When I send 2 requests to "/health" through the ingress gateway
    Then every response has status 200
    And every response shows "Details is healthy"

  Scenario: The product page still answers through the first Gateway
    When a user opens the product page through the ingress gateway 2 times
    Then every response has status 200
    And every response shows "The Comedy of Errors"
