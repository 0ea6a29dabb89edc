@security @mesh-wide
Feature: Mutual TLS between namespaces, and the PeerAuthentication that enforces it
  Workshop lab 7. httpbin and sleep run in foo and bar with sidecars, and in legacy without
  one. Each sidecar holds a certificate for its workload's SPIFFE identity
  (spiffe://cluster.local/ns/<namespace>/sa/<service account>), and sidecars talk mutual
  TLS to each other on their own (auto mTLS), plain text to a workload without a sidecar.
  With no policy, or the mesh-wide PERMISSIVE one, a server takes both, so every sleep
  reaches httpbin in foo and bar. The mesh-wide STRICT policy (PeerAuthentication "default"
  in istio-system, the root namespace) makes the servers take mutual TLS only: the server's
  sidecar resets legacy's plain-text connection, and its curl prints 000 and exits with
  code 56, until legacy's pods are redeployed with sidecars. The policies are mesh-wide:
  each scenario deletes the one it applied, also when it fails, so the mesh is back to no
  PeerAuthentication; and each starts with legacy's pods without a sidecar again.

  Background:
    Given the httpbin and sleep samples are running in namespace foo
    And the httpbin and sleep samples are running in namespace bar
    And the httpbin and sleep samples are running in namespace legacy without a sidecar

  Scenario Outline: With no PeerAuthentication every sleep reaches httpbin
    When sleep in <from> sends 1 request to "http://httpbin.<to>:8000/ip"
    Then curl prints 200 and exits with 0

    Examples:
      | from   | to  |
      | foo    | foo |
      | foo    | bar |
      | bar    | foo |
      | bar    | bar |
      | legacy | foo |
      | legacy | bar |

  Scenario Outline: The mesh-wide PERMISSIVE policy lets everyone in, as before
    Given I apply "mtlspermissive.yaml" in namespace istio-system
    When sleep in <from> sends 1 request to "http://httpbin.<to>:8000/ip"
    Then curl prints 200 and exits with 0

    Examples:
      | from   | to  |
      | foo    | bar |
      | legacy | foo |

  Scenario Outline: The mesh-wide STRICT policy shuts out the sleep without a sidecar
    Given I apply "mtlsstrict.yaml" in namespace istio-system
    When sleep in <from> sends 1 request to "http://httpbin.<to>:8000/ip"
    Then curl prints <http_code> and exits with <exit_code>

    Examples:
      | from   | to  | http_code | exit_code |
      | foo    | foo | 200       | 0         |
      | foo    | bar | 200       | 0         |
      | bar    | foo | 200       | 0         |
      | bar    | bar | 200       | 0         |
      | legacy | foo | 000       | 56        |
      | legacy | bar | 000       | 56        |

  Scenario: With sidecars in legacy too, everyone talks mutual TLS again
    Given I apply "mtlsstrict.yaml" in namespace istio-system
    When I redeploy the httpbin and sleep samples in namespace legacy with a sidecar
    And sleep in legacy sends 1 request to "http://httpbin.foo:8000/ip"
    Then curl prints 200 and exits with 0
    When sleep in legacy sends 1 request to "http://httpbin.bar:8000/ip"
    Then curl prints 200 and exits with 0

  Scenario: The identity a server sees comes from the client's certificate
    When sleep in foo sends 2 requests to "http://httpbin.bar:8000/headers"
    Then httpbin saw the client certificate of spiffe://cluster.local/ns/foo/sa/sleep presented to spiffe://cluster.local/ns/bar/sa/httpbin
    And the sidecar of sleep in foo holds the certificate of spiffe://cluster.local/ns/foo/sa/sleep
    And the sidecar of httpbin in bar holds the certificate of spiffe://cluster.local/ns/bar/sa/httpbin

  Scenario: A client without a sidecar has no identity, and cannot forge one
    When sleep in legacy sends 2 requests to "http://httpbin.foo:8000/headers" with header "X-Forwarded-Client-Cert: URI=spiffe://cluster.local/ns/foo/sa/sleep"
    Then httpbin saw no client certificate
