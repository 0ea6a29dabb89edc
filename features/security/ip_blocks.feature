@security
Feature: IP-based rules: ipBlocks and remoteIpBlocks
  ipBlocks match the address of whoever connects to the proxy enforcing the policy (Envoy's
  direct remote address); remoteIpBlocks match the original client's address, which a
  gateway takes from X-Forwarded-For when proxies it trusts stand in front of it (its
  gatewayTopology.numTrustedProxies). So a policy on a pod's IP at productpage denies that
  pod but not the ingress gateway in front of it, and a gateway trusting one proxy judges
  the client by the last X-Forwarded-For entry.

  Scenario: ipBlocks deny the client pod, not the ingress gateway in front of productpage
    Given the bookinfo sample is running
    And "bookinfo-gateway.yaml" is applied
    And I apply, with CLIENT_POD_IP the IP address of the client pod:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: deny-client-ip
      spec:
        selector:
          matchLabels:
            app: productpage
        action: DENY
        rules:
        - from:
          - source:
              ipBlocks: ["CLIENT_POD_IP"]
      """
    When I send 2 requests to "http://productpage:9080/productpage"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When I send 2 requests to "/productpage" through the ingress gateway
    Then every response has status 200

  Scenario: remoteIpBlocks at a gateway trusting one proxy judge the last X-Forwarded-For entry
    Given the bookinfo sample is running
    And the istio-ingress sample is running in namespace istio-ingress
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: bookinfo-gateway
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
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: bookinfo
      spec:
        hosts:
        - "*"
        gateways:
        - bookinfo-gateway
        http:
        - match:
          - uri:
              exact: /productpage
          route:
          - destination:
              host: productpage
              port:
                number: 9080
      ---
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: allow-remote-ip
        namespace: istio-ingress
      spec:
        selector:
          matchLabels:
            istio: ingress
        action: ALLOW
        rules:
        - from:
          - source:
              remoteIpBlocks: ["1.2.3.4"]
      """
    When I send 2 requests to "http://istio-ingress.istio-ingress/productpage" with header "X-Forwarded-For: 1.2.3.4"
    Then every response has status 200
    When I send 2 requests to "http://istio-ingress.istio-ingress/productpage" with header "X-Forwarded-For: 5.6.7.8"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When I send 2 requests to "http://istio-ingress.istio-ingress/productpage"
    Then every response has status 403

  Scenario: A gateway trusting no proxy ignores X-Forwarded-For
    Given the bookinfo sample is running
    And "bookinfo-gateway.yaml" is applied
    And I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: allow-remote-ip
        namespace: istio-system
      spec:
        selector:
          matchLabels:
            istio: ingressgateway
        action: ALLOW
        rules:
        - from:
          - source:
              remoteIpBlocks: ["1.2.3.4"]
      """
    When I send 2 requests to "http://istio-ingressgateway.istio-system/productpage" with header "X-Forwarded-For: 1.2.3.4"
    Then every response has status 403
    And every response shows "RBAC: access denied"
