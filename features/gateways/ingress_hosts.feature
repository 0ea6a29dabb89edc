@gateways
Feature: Ingress hosts, paths and the gateways a VirtualService applies to
  A Gateway server lists the hosts it accepts (exact or a leading wildcard); a
  VirtualService bound to it routes the hosts both name, by path. A VirtualService's
  `gateways` says where it applies: the named Gateways only; `mesh` for the sidecars;
  omitted, the sidecars only (not "both", whatever some notes say). httpbin stands in for
  the notes' nginx.

  Background:
    Given the httpbin sample is running

  Scenario Outline: The host decides the virtual host, the path the route
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: web-gateway
      spec:
        selector:
          istio: ingressgateway
        servers:
        - port:
            number: 80
            name: http
            protocol: HTTP
          hosts:
          - "web.servicemesh.com"
          - "*.servicemesh.org"
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: web
      spec:
        hosts:
        - "web.servicemesh.com"
        - "*.servicemesh.org"
        gateways:
        - web-gateway
        http:
        - match:
          - uri:
              prefix: /status
          route:
          - destination:
              host: httpbin
              port:
                number: 8000
      """
    When I send 2 requests to "<path>" through the ingress gateway with Host "<host>"
    Then every response has status <status>

    Examples:
      | host                | path        | status |
      | web.servicemesh.com | /status/200 | 200    |
      | a.servicemesh.org   | /status/200 | 200    |
      | web.servicemesh.com | /other      | 404    |
      | other.com           | /status/200 | 404    |

  Scenario: A VirtualService may be bound before its backend exists: 503, not a refusal
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: web-gateway
      spec:
        selector:
          istio: ingressgateway
        servers:
        - port:
            number: 80
            name: http
            protocol: HTTP
          hosts:
          - "web.servicemesh.com"
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: web
      spec:
        hosts:
        - "web.servicemesh.com"
        gateways:
        - web-gateway
        http:
        - route:
          - destination:
              host: nginx
              port:
                number: 80
      """
    When I send 2 requests to "/index.html" through the ingress gateway with Host "web.servicemesh.com"
    Then every response has status 503

  Scenario: A VirtualService bound to a Gateway only leaves mesh traffic alone
    Given the bookinfo sample is running
    And "bookinfo-gateway.yaml" is applied
    And "destination-rule-all.yaml" is applied
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: reviews
      spec:
        hosts:
        - reviews
        gateways:
        - bookinfo-gateway
        http:
        - route:
          - destination:
              host: reviews
              subset: v3
      """
    # productpage calls reviews from its sidecar: mesh traffic, which this rule skips
    When a user opens the product page through the ingress gateway 30 times
    Then the pages are served by reviews v1, v2 and v3

  Scenario: The same VirtualService bound to the mesh routes the calls behind the gateway
    Given the bookinfo sample is running
    And "bookinfo-gateway.yaml" is applied
    And "destination-rule-all.yaml" is applied
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: reviews
      spec:
        hosts:
        - reviews
        gateways:
        - mesh
        http:
        - route:
          - destination:
              host: reviews
              subset: v3
      """
    When a user opens the product page through the ingress gateway 5 times
    Then every page is served by reviews v3

  @needs-istioctl
  Scenario: A VirtualService bound to a Gateway that does not exist is reported
    When I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: web
      spec:
        hosts:
        - "web.servicemesh.com"
        gateways:
        - no-such-gateway
        http:
        - route:
          - destination:
              host: httpbin
      """
    Then istioctl analyze reports IST0101 Referenced gateway not found: "no-such-gateway"

  @needs-istioctl
  Scenario: A Gateway whose selector matches no gateway pod is reported
    When I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: web-gateway
      spec:
        selector:
          istio: ingress
        servers:
        - port:
            number: 80
            name: http
            protocol: HTTP
          hosts:
          - "*"
      """
    Then istioctl analyze reports IST0101 Referenced selector not found: "istio=ingress"
