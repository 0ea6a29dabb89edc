@observability @mesh-wide @needs-tracing-addon
Feature: Distributed tracing
  The sidecars start and report the spans; the apps only pass the trace headers on from
  each request they serve to the calls it makes (x-request-id, the B3 headers, traceparent
  and tracestate). Since Istio 1.22 the install configures no tracer: meshConfig defines a
  tracing provider, and a Telemetry resource selects it, its randomSamplingPercentage
  replacing the 1 % default. The provider here is Zipkin's API at zipkin.istio-system:9411:
  on kind the Jaeger addon's collector, which its query API then shows; the local mesh runs
  a Zipkin stand-in at the same address. A request sent right after a tracing change may
  still ride a connection a sidecar accepted under the old config, so a check that finds
  spans missing sends another request. These scenarios change meshConfig and put it back
  afterwards.

  Background:
    Given the Bookinfo sample is running
    And the mesh config defines the extension providers:
      """
      - name: zipkin
        zipkin:
          service: zipkin.istio-system.svc.cluster.local
          port: 9411
      """

  Scenario: A provider that no Telemetry selects traces nothing
    When a user opens the product page with a new trace id
    Then no trace of the request is recorded

  Scenario: A workload's Telemetry turns its own span reporting off
    Given I apply:
      """
      apiVersion: telemetry.istio.io/v1
      kind: Telemetry
      metadata:
        name: mesh-default
        namespace: istio-system
      spec:
        tracing:
        - providers:
          - name: zipkin
          randomSamplingPercentage: 100
      ---
      apiVersion: telemetry.istio.io/v1
      kind: Telemetry
      metadata:
        name: details-quiet
      spec:
        selector:
          matchLabels:
            app: details
        tracing:
        - disableSpanReporting: true
      """
    When a user opens the product page with a new trace id
    Then the request's trace shows productpage calling reviews
    And the request's trace has no span from details

  Scenario: A mesh-wide Telemetry traces a product page request through every sidecar
    Given I apply "destination-rule-all.yaml"
    And I apply "virtual-service-reviews-v3.yaml"
    And I apply:
      """
      apiVersion: telemetry.istio.io/v1
      kind: Telemetry
      metadata:
        name: mesh-default
        namespace: istio-system
      spec:
        tracing:
        - providers:
          - name: zipkin
          randomSamplingPercentage: 100
      """
    When a user opens the product page with a new trace id
    Then the request's trace shows productpage calling details, productpage calling reviews v3 and reviews v3 calling ratings
