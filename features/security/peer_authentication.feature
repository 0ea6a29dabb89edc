@security
Feature: PeerAuthentication by namespace, workload and port, and the DestinationRule's tls
  A PeerAuthentication applies to the whole mesh (in istio-system), to a namespace (no
  selector), or to the workloads its selector matches, and portLevelMtls sets one port of
  those workloads apart. The most specific one that sets a mode wins: port, then workload,
  then namespace, then mesh; with none, PERMISSIVE (survey L32). The client side follows
  on its own (auto mTLS) unless a DestinationRule's trafficPolicy.tls says otherwise, and
  a client that speaks plain text to a server that wants mutual TLS, or mutual TLS to a
  workload without a sidecar, gets 503 from its own sidecar (Istio's troubleshooting page,
  "503 errors after setting destination rule").

  Background:
    Given the httpbin and sleep samples are running in namespace foo
    And the httpbin and sleep samples are running in namespace bar
    And the httpbin and sleep samples are running in namespace legacy without a sidecar

  Scenario: A namespace's STRICT policy holds in that namespace only
    Given I apply:
      """
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: default
        namespace: foo
      spec:
        mtls:
          mode: STRICT
      """
    When sleep in legacy sends 2 requests to "http://httpbin.foo:8000/ip"
    Then curl prints 000 and exits with 56
    When sleep in legacy sends 2 requests to "http://httpbin.bar:8000/ip"
    Then curl prints 200 and exits with 0
    When sleep in bar sends 2 requests to "http://httpbin.foo:8000/ip"
    Then curl prints 200 and exits with 0

  Scenario: A workload's policy overrides its namespace's
    Given I apply:
      """
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: default
        namespace: foo
      spec:
        mtls:
          mode: STRICT
      ---
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: httpbin
        namespace: foo
      spec:
        selector:
          matchLabels:
            app: httpbin
        mtls:
          mode: PERMISSIVE
      """
    When sleep in legacy sends 2 requests to "http://httpbin.foo:8000/ip"
    Then curl prints 200 and exits with 0

  Scenario: portLevelMtls sets one port of the workload apart
    # httpbin's Service port 8000 targets the container's 8080: the key is the
    # container's port.
    Given I apply:
      """
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: httpbin
        namespace: bar
      spec:
        selector:
          matchLabels:
            app: httpbin
        mtls:
          mode: STRICT
        portLevelMtls:
          8080:
            mode: DISABLE
      """
    When sleep in legacy sends 2 requests to "http://httpbin.bar:8000/headers"
    Then curl prints 200 and exits with 0
    # DISABLE: the server takes plain text only, so the sidecars send it no certificate
    When sleep in foo sends 2 requests to "http://httpbin.bar:8000/headers"
    Then httpbin saw no client certificate

  @mesh-wide
  Scenario: A namespace's PERMISSIVE policy overrides the mesh's STRICT one
    Given I apply "mtlsstrict.yaml" in namespace istio-system
    And I apply:
      """
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: default
        namespace: bar
      spec:
        mtls:
          mode: PERMISSIVE
      """
    When sleep in legacy sends 2 requests to "http://httpbin.bar:8000/ip"
    Then curl prints 200 and exits with 0
    When sleep in legacy sends 2 requests to "http://httpbin.foo:8000/ip"
    Then curl prints 000 and exits with 56

  Scenario: A DestinationRule that disables TLS toward a STRICT server gets 503
    Given I apply:
      """
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: default
        namespace: bar
      spec:
        mtls:
          mode: STRICT
      ---
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata:
        name: httpbin-plain
        namespace: bar
      spec:
        host: httpbin.bar.svc.cluster.local
        trafficPolicy:
          tls:
            mode: DISABLE
      """
    When sleep in foo sends 2 requests to "http://httpbin.bar:8000/ip"
    Then curl prints 503 and exits with 0

  Scenario: ISTIO_MUTUAL toward a workload without a sidecar gets 503
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata:
        name: httpbin-legacy
        namespace: legacy
      spec:
        host: httpbin.legacy.svc.cluster.local
        trafficPolicy:
          tls:
            mode: ISTIO_MUTUAL
      """
    When sleep in foo sends 2 requests to "http://httpbin.legacy:8000/ip"
    Then curl prints 503 and exits with 0

  Scenario: A PeerAuthentication with an unknown mode is refused
    When I try to apply:
      """
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: default
        namespace: foo
      spec:
        mtls:
          mode: STRICTER
      """
    Then applying it fails at "spec.mtls.mode" mentioning "STRICTER"
    When sleep in legacy sends 1 request to "http://httpbin.foo:8000/ip"
    Then curl prints 200 and exits with 0

  Scenario: portLevelMtls needs a workload selector
    When I try to apply:
      """
      apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: default
        namespace: foo
      spec:
        mtls:
          mode: STRICT
        portLevelMtls:
          8080:
            mode: DISABLE
      """
    Then applying it fails at "spec.portLevelMtls" mentioning "add a selector"
