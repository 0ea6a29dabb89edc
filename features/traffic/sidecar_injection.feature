@traffic
Feature: The sidecar: injection, endpoints and interception
  Istio's injector adds the istio-proxy sidecar to a pod when its namespace is labelled
  istio-injection=enabled (or istio.io/rev=default), or when the pod alone asks with the
  label sidecar.istio.io/inject=true in a namespace with neither label; a namespace
  labelled istio-injection=disabled wins over the pod's label, and a pod's
  sidecar.istio.io/inject=false opts out of an enabled namespace (survey L03). A request
  that crossed the client's sidecar carries the X-Envoy-Attempt-Count header its router
  adds. The sidecar resolves a Service to its pods' own addresses from istiod, bypassing
  kube-proxy, and follows a Deployment as it scales (L05). On a cluster, istio-init's
  iptables rules send outbound TCP to port 15001 and inbound to 15006 (L04).

  Background:
    Given the httpbin sample is running

  Scenario: A namespace labelled istio-injection=enabled gives its pods a sidecar
    Given namespace inject-on is labelled istio-injection=enabled
    When I deploy the sleep sample in namespace inject-on
    Then the sleep pod in inject-on has a sidecar
    When sleep in inject-on sends 2 requests to "http://httpbin.default:8000/headers"
    Then httpbin saw the X-Envoy-Attempt-Count header
    And the sender's sidecar logged the requests, each to a pod address of httpbin

  Scenario: istio-injection=disabled wins over the pod's sidecar.istio.io/inject=true
    Given namespace inject-off is labelled istio-injection=disabled
    When I deploy the sleep sample in namespace inject-off with the pod label sidecar.istio.io/inject=true
    Then the sleep pod in inject-off has no sidecar
    When sleep in inject-off sends 2 requests to "http://httpbin.default:8000/headers"
    Then httpbin saw the X-Envoy-Attempt-Count header of no sidecar

  Scenario: The pod label alone asks for a sidecar in a namespace without injection labels
    Given namespace inject-pod has no injection label
    When I deploy the sleep sample in namespace inject-pod with the pod label sidecar.istio.io/inject=true
    Then the sleep pod in inject-pod has a sidecar
    When sleep in inject-pod sends 2 requests to "http://httpbin.default:8000/headers"
    Then httpbin saw the X-Envoy-Attempt-Count header

  Scenario: Without any label a pod gets no sidecar and talks to the pods directly
    Given namespace inject-none has no injection label
    When I deploy the sleep sample in namespace inject-none
    Then the sleep pod in inject-none has no sidecar
    When sleep in inject-none sends 2 requests to "http://httpbin.default:8000/headers"
    Then httpbin saw the X-Envoy-Attempt-Count header of no sidecar

  Scenario: sidecar.istio.io/inject=false opts a pod out of an enabled namespace
    Given namespace inject-opt-out is labelled istio-injection=enabled
    When I deploy the sleep sample in namespace inject-opt-out with the pod label sidecar.istio.io/inject=false
    Then the sleep pod in inject-opt-out has no sidecar

  Scenario: A namespace labelled with the default revision gives its pods a sidecar
    Given namespace inject-rev is labelled istio.io/rev=default
    When I deploy the sleep sample in namespace inject-rev
    Then the sleep pod in inject-rev has a sidecar
    When sleep in inject-rev sends 2 requests to "http://httpbin.default:8000/headers"
    Then httpbin saw the X-Envoy-Attempt-Count header

  @needs-istioctl
  Scenario: Only the pods with a sidecar are in the proxy list
    Given namespace inject-on is labelled istio-injection=enabled
    And namespace inject-off is labelled istio-injection=disabled
    When I deploy the sleep sample in namespace inject-on
    And I deploy the sleep sample in namespace inject-off with the pod label sidecar.istio.io/inject=true
    Then the proxy list has the sleep pod in inject-on
    And the proxy list lacks the sleep pod in inject-off

  Scenario: The client sidecar holds the reviews pods' own addresses
    Given the bookinfo sample is running
    Then the client sidecar's endpoints for reviews port 9080 are the three reviews pod addresses
    When I send 6 requests to "http://reviews:9080/reviews/0"
    Then the sender's sidecar logged the requests, each to a pod address of reviews

  Scenario: Scaling a Deployment changes the endpoints the sidecar holds
    Given the bookinfo sample is running
    When I scale reviews-v3 to 2 replicas
    Then the client sidecar's endpoints for reviews port 9080 are the four reviews pod addresses
    When I scale reviews-v3 to 0 replicas
    Then the client sidecar's endpoints for reviews port 9080 are the two reviews pod addresses

  @iptables
  Scenario: istio-init redirects the pod's TCP to the sidecar's virtual listeners
    Given the bookinfo sample is running
    Then the istio-init log of productpage-v1 redirects outbound TCP to 15001 and inbound to 15006
    And the productpage-v1 sidecar has the virtual listeners 15001 and 15006
