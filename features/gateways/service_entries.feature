@gateways @mesh-wide
Feature: External services: ServiceEntry and the mesh's outbound traffic policy
  By default (ALLOW_ANY) a sidecar lets a request for a host it has no config for through
  to wherever the name leads. With meshConfig.outboundTrafficPolicy.mode REGISTRY_ONLY it
  answers 502 itself (route block_all), until a ServiceEntry declares the host. Declared,
  the external host gets the mesh's routing: a VirtualService timeout, a DestinationRule.
  These scenarios change the mesh-wide mode and put the previous one back afterwards.
  Timing bands run from the mechanism's earliest answer (less 10 ms of timer granularity)
  to its latest plus 0.25 s of scheduling noise (docs/architecture.md#timing-bands).
  The external service is httpbin in the namespace "external" (no sidecar); the host
  ext.example.com is declared with a ServiceEntry whose endpoint is that Service, and curl
  resolves it to any address (--resolve): the sidecar captures the connection and routes by
  the Host header, so no DNS and no internet are involved.

  Background:
    Given the external sample is running
    And the mesh's outbound traffic policy is REGISTRY_ONLY

  Scenario: Under REGISTRY_ONLY an undeclared host gets 502 from the sidecar
    When I send 2 requests to "http://ext.example.com/get" with curl --resolve "ext.example.com:80:1.1.1.1"
    Then every response has status 502 and an empty body

  Scenario: A ServiceEntry lets the declared host through
    Given I apply:
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
    When I send 2 requests to "http://ext.example.com/get" with curl --resolve "ext.example.com:80:1.1.1.1"
    Then every response has status 200
    And the client's sidecar sent them to outbound|80||ext.example.com

  Scenario: A VirtualService timeout applies to the external host
    Given I apply:
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
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: ext
      spec:
        hosts:
        - ext.example.com
        http:
        - timeout: 1s
          route:
          - destination:
              host: ext.example.com
      """
    # /delay/3 answers after 3 s; the 1 s timeout answers 504 first, after 1 s
    When I send 1 request to "http://ext.example.com/delay/3" with curl --resolve "ext.example.com:80:1.1.1.1"
    Then every response took 0.99 to 1.25 seconds
    And every response has status 504 and body "upstream request timeout"

  Scenario: A DestinationRule applies to the external host's cluster
    Given I apply:
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
      ---
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata:
        name: ext
      spec:
        host: ext.example.com
        trafficPolicy:
          connectionPool:
            tcp:
              maxConnections: 1
            http:
              http1MaxPendingRequests: 1
      """
    Then the client's sidecar's ext.example.com cluster allows 1 connection and 1 pending request

  Scenario: Under ALLOW_ANY a host the sidecar does not know is let through
    # httpbin in the client's namespace keeps a listener on port 8000 in the client's
    # sidecar (without iptables the local mesh has no catch-all listener for other ports)
    Given the httpbin sample is running
    And the mesh's outbound traffic policy is ALLOW_ANY
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Sidecar
      metadata:
        name: default
      spec:
        egress:
        - hosts:
          - "./*"
          - "istio-system/*"
      """
    # the Sidecar leaves the namespace "external" out of the client's config
    When I send 2 requests to "http://httpbin.external:8000/get"
    Then every response has status 200
    And the client's sidecar sent them to PassthroughCluster
