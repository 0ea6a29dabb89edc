@resilience
Feature: Traffic mirroring
  Istio task "Mirroring" (workshop lab 5.2). httpbin v1 answers; with a mirror rule the
  client's sidecar also sends a copy of each request to v2, does not wait for it, and
  throws its response away. Each batch carries a nonce, so the v1 and v2 logs show
  exactly which requests reached them.
  Timing bands run from the mechanism's earliest answer (less 10 ms of timer granularity)
  to its latest plus 0.25 s of scheduling noise: with one of this 2-core machine's cores
  kept busy, no answer came more than 18 ms after its mechanism's latest (75 answers over
  3 runs; docs/architecture.md#timing-bands says how to measure it again).

  Background:
    Given the httpbin sample is running
    And I apply "httpbinvs.yaml"

  Scenario: Before mirroring only v1 sees the requests
    When I send 5 requests tagged with a nonce to "http://httpbin:8000/headers"
    Then every response has status 200
    And httpbin-v1 logged the tagged requests 5 times
    And httpbin-v2 logged none of the tagged requests

  Scenario: With 100 % mirroring v2 logs every request too
    Given I apply "mirror.yaml"
    When I send 5 requests tagged with a nonce to "http://httpbin:8000/headers"
    Then every response has status 200
    And httpbin-v1 logged the tagged requests 5 times
    And httpbin-v2 logged the tagged requests 5 times
    # Envoy appends -shadow to the mirrored Host up to Istio 1.27, and no longer from 1.28.
    And the httpbin-v2 sidecar saw the tagged requests with the host the Istio version uses

  Scenario: With 50 % mirroring about half the requests reach v2
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: httpbin
      spec:
        hosts:
        - httpbin
        http:
        - route:
          - destination:
              host: httpbin
              subset: v1
          mirror:
            host: httpbin
            subset: v2
          mirrorPercentage:
            value: 50
      """
    When I keep sending requests tagged with a nonce to "http://httpbin:8000/headers"
    Then httpbin-v1 logged each tagged request once
    And httpbin-v2 logged about 50% of the tagged requests

  Scenario: The deprecated mirrorPercent still mirrors
    Given I apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: VirtualService
      metadata:
        name: httpbin
      spec:
        hosts:
        - httpbin
        http:
        - route:
          - destination:
              host: httpbin
              subset: v1
          mirror:
            host: httpbin
            subset: v2
          mirrorPercent: 100
      """
    When I send 3 requests tagged with a nonce to "http://httpbin:8000/headers"
    Then httpbin-v2 logged the tagged requests 3 times

  Scenario: The mirror's answer never reaches the client
    # v2 answers the mirrored /status/200 too, and a slow mirror would not slow v1 down:
    # the client sees exactly one answer per request, v1's.
    Given I apply "mirror.yaml"
    When I send 5 requests tagged with a nonce to "http://httpbin:8000/delay/1"
    Then every response has status 200
    # httpbin's 1 s delay on v1; the mirror's answer is not waited for
    And every response took 0.99 to 1.25 seconds
    And httpbin-v1 logged the tagged requests 5 times
    And httpbin-v2 logged the tagged requests 5 times
