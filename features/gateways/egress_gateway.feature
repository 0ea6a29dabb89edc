@gateways
Feature: Leaving the mesh through the egress gateway
  The egress gateway task: a ServiceEntry declares the external host, a Gateway opens port
  80 for it on istio-egressgateway, a DestinationRule names a subset of the egress
  gateway, and one VirtualService sends the sidecars' requests for the host to the egress
  gateway (its `mesh` match) and the egress gateway's on to the host (its gateway match).
  The external host ext.example.com is the "external" namespace's httpbin (no sidecar),
  and every request carries a nonce, so the logs show which way it went.

  Background:
    Given the external sample is running
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: ServiceEntry
      metadata:
        name: ext
      spec:
        hosts:
        - ext.example.com
        ports:
        - number: 80
          name: http
          protocol: HTTP
        location: MESH_EXTERNAL
        resolution: DNS
        endpoints:
        - address: httpbin.external.svc.cluster.local
          ports:
            http: 8000
      """

  Scenario: Without the egress rules the sidecar goes to the external host itself
    When I send 3 requests tagged with a nonce to "http://ext.example.com/get" with curl --resolve "ext.example.com:80:1.1.1.1"
    Then every response has status 200
    And external/httpbin logged the tagged requests 3 times
    And istio-egressgateway logged none of the tagged requests

  Scenario: The sidecar's requests leave through the egress gateway
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: istio-egressgateway
      spec:
        selector:
          istio: egressgateway
        servers:
        - port:
            number: 80
            name: http
            protocol: HTTP
          hosts:
          - ext.example.com
      ---
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata:
        name: egressgateway-for-ext
      spec:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subsets:
        - name: ext
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: direct-ext-through-egress-gateway
      spec:
        hosts:
        - ext.example.com
        gateways:
        - istio-egressgateway
        - mesh
        http:
        - match:
          - gateways:
            - mesh
            port: 80
          route:
          - destination:
              host: istio-egressgateway.istio-system.svc.cluster.local
              subset: ext
              port:
                number: 80
        - match:
          - gateways:
            - istio-egressgateway
            port: 80
          route:
          - destination:
              host: ext.example.com
              port:
                number: 80
      """
    When I send 3 requests tagged with a nonce to "http://ext.example.com/get" with curl --resolve "ext.example.com:80:1.1.1.1"
    Then every response has status 200
    And istio-egressgateway logged the tagged requests 3 times
    And external/httpbin logged the tagged requests 3 times
