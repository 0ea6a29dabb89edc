@observability
Feature: Access logs
  Workshop lab 9.1 and the survey's access-log lab. Every sidecar writes one line per
  request to its istio-proxy log: the demo profile turns it on (meshConfig.accessLogFile
  /dev/stdout) in Istio's TEXT format, accessLogEncoding JSON writes the same fields as
  JSON, and the Telemetry API chooses instead once it names a provider: on for the mesh,
  off for one workload, or only for the requests a filter keeps. Each request carries a
  nonce; the calls it causes share its x-request-id. The response flags say why Envoy
  answered as it did.

  Background:
    Given the Bookinfo sample is running

  Scenario: The demo profile logs the product page request and the two calls it makes
    When I send 1 requests tagged with a nonce to "http://productpage:9080/productpage"
    Then productpage's sidecar logged the tagged request as TEXT: GET /productpage, 200, flags "-", upstream cluster "inbound|9080||"
    And productpage's sidecar logged its call to details under the same request id as TEXT: GET /details/0, 200, flags "-", upstream cluster "outbound|9080||details.default.svc.cluster.local"
    And productpage's sidecar logged its call to reviews under the same request id as TEXT: GET /reviews/0, 200, flags "-", upstream cluster "outbound|9080||reviews.default.svc.cluster.local"
    And the client's sidecar logged the tagged request as TEXT: GET /productpage, 200, flags "-", upstream cluster "outbound|9080||productpage.default.svc.cluster.local"

  Scenario: With accessLogEncoding JSON the same lines are JSON records
    Given the mesh's access log encoding is JSON
    When I send 1 requests tagged with a nonce to "http://productpage:9080/productpage"
    Then productpage's sidecar logged the tagged request as JSON: GET /productpage, 200, flags "-", upstream cluster "inbound|9080||"
    And productpage's sidecar logged its call to details under the same request id as JSON: GET /details/0, 200, flags "-", upstream cluster "outbound|9080||details.default.svc.cluster.local"
    And productpage's sidecar logged its call to reviews under the same request id as JSON: GET /reviews/0, 200, flags "-", upstream cluster "outbound|9080||reviews.default.svc.cluster.local"

  Scenario: Without an access log file nothing is logged, until it is set again
    Given the mesh's access log file is ""
    When I send 1 requests tagged with a nonce to "http://productpage:9080/productpage"
    Then every response has status 200
    And productpage's sidecar logged none of the tagged requests
    And the client's sidecar logged none of the tagged requests
    When the mesh's access log file is "/dev/stdout"
    And I send 1 requests tagged with a nonce to "http://productpage:9080/productpage"
    Then productpage's sidecar logged the tagged request: GET /productpage, 200, flags "-", upstream cluster "inbound|9080||"

  Scenario: A Telemetry with the envoy provider logs without the mesh config's file, server side only
    Given the mesh's access log file is ""
    And I apply:
      """
      apiVersion: telemetry.istio.io/v1
      kind: Telemetry
      metadata:
        name: mesh-default
        namespace: istio-system
      spec:
        accessLogging:
        - providers:
          - name: envoy
          match:
            mode: SERVER
      """
    When I send 1 requests tagged with a nonce to "http://productpage:9080/productpage"
    Then productpage's sidecar logged the tagged request: GET /productpage, 200, flags "-", upstream cluster "inbound|9080||"
    And the client's sidecar logged none of the tagged requests

  Scenario: A workload's Telemetry turns its own access log off
    Given I apply:
      """
      apiVersion: telemetry.istio.io/v1
      kind: Telemetry
      metadata:
        name: mesh-default
        namespace: istio-system
      spec:
        accessLogging:
        - providers:
          - name: envoy
      ---
      apiVersion: telemetry.istio.io/v1
      kind: Telemetry
      metadata:
        name: productpage-quiet
      spec:
        selector:
          matchLabels:
            app: productpage
        accessLogging:
        - disabled: true
      """
    When I send 1 requests tagged with a nonce to "http://productpage:9080/productpage"
    Then the client's sidecar logged the tagged request: GET /productpage, 200, flags "-", upstream cluster "outbound|9080||productpage.default.svc.cluster.local"
    And productpage's sidecar logged none of the tagged requests

  Scenario: A filter logs only the failed requests
    Given I apply:
      """
      apiVersion: telemetry.istio.io/v1
      kind: Telemetry
      metadata:
        name: mesh-default
        namespace: istio-system
      spec:
        accessLogging:
        - providers:
          - name: envoy
          filter:
            expression: response.code >= 400
      """
    When I send 1 requests tagged with a nonce to "http://productpage:9080/productpage"
    Then the client's sidecar logged none of the tagged requests
    When I send 1 requests tagged with a nonce to "http://productpage:9080/no-such-page"
    Then the client's sidecar logged the tagged request: GET /no-such-page, 404, flags "-", upstream cluster "outbound|9080||productpage.default.svc.cluster.local"

  Scenario: Plain text to a STRICT port: no filter chain takes it, and the listener logs NR
    Given the sleep sample is running in namespace legacy without a sidecar
    And I apply "mtlsstrict.yaml" in namespace istio-system
    When sleep in legacy sends 1 request to "http://productpage.default:9080/productpage"
    Then curl prints 000 and exits with 56
    And productpage's sidecar logged the connection from sleep in legacy with flags "NR" and details "filter_chain_not_found"

  Scenario Outline: Response flag <flags>: <why>
    Given "destination-rule-all.yaml" is applied
    And I apply <manifests>
    When I send 1 requests tagged with a nonce to "http://<service>:9080<path>"
    Then the client's sidecar logged the tagged request: GET <path>, <status>, flags "<flags>", upstream cluster "<cluster>"

    Examples:
      | flags | why                                     | manifests                                     | service     | path               | status | cluster                                                  |
      | DI    | a delay injected into ratings           | "delay.yaml"                                  | ratings     | /ratings/0         | 200    | outbound\|9080\|v1\|ratings.default.svc.cluster.local    |
      | FI    | an abort injected into details          | "fault-injection-details-v1.yaml"             | details     | /details/0         | 555    | outbound\|9080\|v1\|details.default.svc.cluster.local    |
      | UT    | reviews v2 waits for ratings past 1 s   | "timeout.yaml" and "delay.yaml"               | reviews     | /reviews/0         | 504    | outbound\|9080\|v2\|reviews.default.svc.cluster.local    |
      | URX   | productpage fails every retry           | "fault-injection-details-v1.yaml" and "virtual-service-productpage-retries.yaml" | productpage | /api/v1/products/0 | 555 | outbound\|9080\|v1\|productpage.default.svc.cluster.local |
      | UH    | ratings v2 has no pods                  | "virtual-service-ratings-v2.yaml"             | ratings     | /ratings/0         | 503    | outbound\|9080\|v2\|ratings.default.svc.cluster.local    |
      | NR    | only jason has a route to reviews       | "virtual-service-reviews-jason-only.yaml"     | reviews     | /reviews/0         | 404    | -                                                        |

  Scenario: Response flag UO: the circuit breaker rejects what overflows one connection
    Given I apply "destination-rule-ratings-one-connection.yaml"
    When I send 30 requests tagged with a nonce to "http://ratings:9080/ratings/0" over 3 parallel connections
    Then the client's sidecar logged some tagged requests: GET /ratings/0, 503, flags "UO", upstream cluster "outbound|9080||ratings.default.svc.cluster.local"
