@gateways
Feature: Two-level routing: a gateway VirtualService that filters, mesh rules behind it
  A design from the notes: a VirtualService bound to the gateway exposes a few paths of a
  service for an external host and refuses the rest; the service's own VirtualService
  routes mesh traffic. The mesh rules do not apply at the gateway (a VirtualService without
  `gateways` is for the sidecars only); delegation makes one set of rules serve the gateway.

  Background:
    Given the bookinfo sample is running
    And I apply:
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
            number: 80
            name: http
            protocol: HTTP
          hosts:
          - "bookinfo.example.com"
      """

  Scenario: The gateway exposes some paths, refuses the rest; the mesh is not filtered
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: bookinfo-edge
      spec:
        hosts:
        - "bookinfo.example.com"
        gateways:
        - bookinfo-gateway
        http:
        - match:
          - uri:
              exact: /productpage
          - uri:
              prefix: /static
          - uri:
              prefix: /api/v1/products
          route:
          - destination:
              host: productpage
              port:
                number: 9080
        - directResponse:
            status: 403
          headers:
            response:
              set:
                x-blocked-by: gateway-policy
      """
    When I send 2 requests to "/productpage" through the ingress gateway with Host "bookinfo.example.com"
    Then every response has status 200
    When I send 2 requests to "/health" through the ingress gateway with Host "bookinfo.example.com"
    Then every response has status 403
    And every response has header "x-blocked-by: gateway-policy"
    When I send 2 requests to "http://productpage:9080/health"
    Then every response has status 200
    And every response shows "Product page is healthy"

  Scenario: A VirtualService without gateways does not apply at the gateway
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: bookinfo-edge
      spec:
        hosts:
        - "bookinfo.example.com"
        gateways:
        - bookinfo-gateway
        http:
        - route:
          - destination:
              host: productpage
              port:
                number: 9080
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: productpage
      spec:
        hosts:
        - productpage
        http:
        - match:
          - uri:
              prefix: /api/v1/products
          directResponse:
            status: 418
        - route:
          - destination:
              host: productpage
      """
    When I send 2 requests to "http://productpage:9080/api/v1/products"
    Then every response has status 418
    When I send 2 requests to "/api/v1/products" through the ingress gateway with Host "bookinfo.example.com"
    Then every response has status 200

  Scenario: Delegation: the gateway's VirtualService hands its paths to a child
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: bookinfo-edge
      spec:
        hosts:
        - "bookinfo.example.com"
        gateways:
        - bookinfo-gateway
        http:
        - match:
          - uri:
              prefix: /
          delegate:
            name: productpage-routes
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: productpage-routes
      spec:
        http:
        - match:
          - uri:
              exact: /productpage
          route:
          - destination:
              host: productpage
              port:
                number: 9080
        - match:
          - uri:
              prefix: /
          directResponse:
            status: 403
      """
    When I send 2 requests to "/productpage" through the ingress gateway with Host "bookinfo.example.com"
    Then every response has status 200
    And every response shows "The Comedy of Errors"
    When I send 2 requests to "/health" through the ingress gateway with Host "bookinfo.example.com"
    Then every response has status 403
