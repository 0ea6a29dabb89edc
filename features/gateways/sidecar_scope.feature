@gateways
Feature: The Sidecar resource: what a sidecar sees of the mesh
  By default every sidecar has config for every Service of the mesh. A Sidecar resource in
  a namespace narrows its sidecars' egress to the hosts it lists (`./*`: the namespace's
  own Services; `istio-system/*`: the gateways). A host outside that scope is unknown to
  the sidecar: the outbound traffic policy decides (ALLOW_ANY: let through, as
  PassthroughCluster, with none of the mesh's routing; REGISTRY_ONLY: 502). The external
  sample's httpbin lives in the namespace "external".

  Background:
    Given the httpbin sample is running
    And the external sample is running

  Scenario: Without a Sidecar the client's sidecar routes to every namespace's Services
    When I send 2 requests to "http://httpbin.external:8000/get"
    Then every response has status 200
    And the client's sidecar sent them to outbound|8000||httpbin.external.svc.cluster.local

  Scenario: Scoped to its own namespace, the sidecar still routes to it
    Given I apply:
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
    When I send 2 requests to "http://httpbin:8000/get"
    Then every response has status 200
    And the client's sidecar sent them to outbound|8000||httpbin.default.svc.cluster.local

  Scenario: A host outside the scope is let through without the mesh's routing
    Given I apply:
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
    When I send 2 requests to "http://httpbin.external:8000/get"
    Then every response has status 200
    And the client's sidecar sent them to PassthroughCluster

  Scenario: With REGISTRY_ONLY in the Sidecar, a host outside the scope gets 502
    Given I apply:
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
        outboundTrafficPolicy:
          mode: REGISTRY_ONLY
      """
    When I send 2 requests to "http://httpbin.external:8000/get"
    Then every response has status 502 and an empty body
