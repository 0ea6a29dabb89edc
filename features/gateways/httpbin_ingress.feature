@gateways
Feature: httpbin through the ingress gateway, chosen by its Host
  The workshop publishes httpbin for the host httpbin.example.com only: requests must carry
  that Host header (curl -H "Host: httpbin.example.com"), and only /status and /delay are
  routed. Then it republishes /headers for every host.
  Timing bands run from the mechanism's earliest answer (less 10 ms of timer granularity)
  to its latest plus 0.25 s of scheduling noise (docs/architecture.md#timing-bands).

  Background:
    Given the httpbin sample is running
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: httpbin-gateway
      spec:
        selector:
          istio: ingressgateway
        servers:
        - port:
            number: 80
            name: http
            protocol: HTTP
          hosts:
          - "httpbin.example.com"
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: httpbin
      spec:
        hosts:
        - "httpbin.example.com"
        gateways:
        - httpbin-gateway
        http:
        - match:
          - uri:
              prefix: /status
          - uri:
              prefix: /delay
          route:
          - destination:
              port:
                number: 8000
              host: httpbin
      """

  Scenario: /status and /delay answer for httpbin.example.com
    When I send 2 requests to "/status/200" through the ingress gateway with Host "httpbin.example.com"
    Then every response has status 200
    # /delay/1 answers after 1 s
    When I send 1 request to "/delay/1" through the ingress gateway with Host "httpbin.example.com"
    Then every response took 0.99 to 1.25 seconds
    And every response has status 200

  Scenario: A path no route matches gets the gateway's 404
    When I send 2 requests to "/headers" through the ingress gateway with Host "httpbin.example.com"
    Then every response has status 404 from "istio-envoy"

  Scenario: Another Host, or none, gets the gateway's 404
    When I send 2 requests to "/status/200" through the ingress gateway with Host "other.example.com"
    Then every response has status 404 from "istio-envoy"
    When I send 2 requests to "/status/200" through the ingress gateway
    Then every response has status 404 from "istio-envoy"

  Scenario: Republished for every host, /headers answers without a Host header
    When I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: httpbin-gateway
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
        name: httpbin
      spec:
        hosts:
        - "*"
        gateways:
        - httpbin-gateway
        http:
        - match:
          - uri:
              prefix: /headers
          route:
          - destination:
              port:
                number: 8000
              host: httpbin
      """
    And I send 2 requests to "/headers" through the ingress gateway
    Then every response has status 200
    And every response shows "X-Forwarded-For"
    When I send 2 requests to "/status/200" through the ingress gateway with Host "httpbin.example.com"
    Then every response has status 404 from "istio-envoy"
