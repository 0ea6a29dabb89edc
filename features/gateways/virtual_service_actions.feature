@gateways
Feature: VirtualService actions: direct responses, redirects, rewrites, headers and delegation
  Besides sending a request to a destination, a VirtualService rule can answer it itself
  (a direct response or a redirect), rewrite its path and Host on the way, set, add and
  remove request and response headers, or hand a path over to another VirtualService
  (delegate). The client's sidecar does all of this, so the requests go straight from the
  client pod, as an in-mesh probe does; no ingress gateway is involved.

  Scenario: A catch-all direct response answers 404 with a reason for every unlisted path
    Given the Bookinfo sample is running
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: productpage
      spec:
        hosts:
        - productpage
        http:
        - match:
          - uri:
              exact: /productpage
          - uri:
              prefix: /static
          - uri:
              prefix: /api/v1/products
          route:
          - destination:
              host: productpage
        # everything else is refused by the client's sidecar itself
        - directResponse:
            status: 404
            body:
              string: path not allowed
          headers:
            response:
              set:
                x-block-reason: path-not-allowed
      """
    When I send 3 requests to "http://productpage:9080/health"
    Then every response has status 404 and body "path not allowed"
    And every response has header "x-block-reason: path-not-allowed"
    When I send 3 requests to "http://productpage:9080/productpage"
    Then every response has status 200
    And no response has header "x-block-reason"

  Scenario: Without a catch-all rule an unlisted path is not passed through: 404 from the sidecar
    Given the Bookinfo sample is running
    When I send 3 requests to "http://productpage:9080/health"
    Then every response has status 200
    When I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: productpage
      spec:
        hosts:
        - productpage
        http:
        - match:
          - uri:
              exact: /productpage
          route:
          - destination:
              host: productpage
      """
    And I send 3 requests to "http://productpage:9080/health"
    # no route matches (NR): Envoy's own 404, nothing reaches productpage
    Then every response has status 404 and an empty body
    When I send 3 requests to "http://productpage:9080/productpage"
    Then every response has status 200

  Scenario: A redirect answers 301 with the new location, which curl does not follow
    Given the Bookinfo sample is running
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: productpage
      spec:
        hosts:
        - productpage
        http:
        - match:
          - uri:
              prefix: /books
          redirect:
            uri: /api/v1/products
        - match:
          - uri:
              prefix: /private
          redirect:
            uri: /api/not-found
            authority: error-service.default.svc.cluster.local
        - route:
          - destination:
              host: productpage
      """
    When I send 3 requests to "http://productpage:9080/books/0"
    Then every response has status 301
    # the request's host and port stay unless the redirect names an authority
    And every response has header "location: http://productpage:9080/api/v1/products"
    When I send 3 requests to "http://productpage:9080/private/0"
    Then every response has status 301
    And every response has header "location: http://error-service.default.svc.cluster.local/api/not-found"
    When I send 3 requests to "http://productpage:9080/api/v1/products"
    Then every response has status 200

  Scenario: A rewrite changes the path and the Host that httpbin receives
    Given the httpbin sample is running
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: httpbin
      spec:
        hosts:
        - httpbin
        http:
        - match:
          - uri:
              prefix: /echo
          rewrite:
            uri: /anything
            authority: echo.example.com
          route:
          - destination:
              host: httpbin
        - route:
          - destination:
              host: httpbin
      """
    When I send 3 requests to "http://httpbin:8000/echo/hello"
    Then every response has status 200
    And httpbin saw every request at path "/anything/hello"
    And httpbin saw every request with header "Host: echo.example.com"
    When I send 3 requests to "http://httpbin:8000/anything/hello"
    Then httpbin saw every request with header "Host: httpbin:8000"

  Scenario: Request and response headers are set, added and removed on the way
    Given the httpbin sample is running
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: httpbin
      spec:
        hosts:
        - httpbin
        http:
        - headers:
            request:
              set:
                x-lab: headers
              add:
                x-trace: mesh
              remove:
              - user-agent
            response:
              set:
                x-served-by: mesh
              remove:
              - access-control-allow-credentials
          route:
          - destination:
              host: httpbin
            headers:
              request:
                set:
                  x-destination: httpbin
      """
    When I send 3 requests to "http://httpbin:8000/headers" with header "x-trace: client"
    Then every response has status 200
    And httpbin saw every request with header "x-lab: headers"
    And httpbin saw every request with header "x-destination: httpbin"
    # add keeps the client's value and adds the mesh's
    And httpbin saw every request with header "x-trace: client, mesh"
    And httpbin saw no request with header "user-agent"
    And every response has header "x-served-by: mesh"
    # httpbin sets it on every answer; the client's sidecar takes it out
    And no response has header "access-control-allow-credentials"

  Scenario: A root VirtualService delegates /reviews to a VirtualService that routes by product
    Given the Bookinfo sample is running
    And "destination-rule-all.yaml" is applied
    # the delegate has no hosts: it only applies through the root's delegate rule
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: reviews
      spec:
        hosts:
        - reviews
        http:
        - match:
          - uri:
              prefix: /reviews
          headers:
            response:
              set:
                x-routed-by: reviews-root
          delegate:
            name: reviews-by-product
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: reviews-by-product
      spec:
        http:
        - match:
          - uri:
              exact: /reviews/0
          route:
          - destination:
              host: reviews
              subset: v3
        - route:
          - destination:
              host: reviews
              subset: v2
      """
    When I send 5 requests to "http://reviews:9080/reviews/0"
    Then every response is served by reviews v3
    # the root's headers fill in what the delegate's rules leave unset
    And every response has header "x-routed-by: reviews-root"
    When I send 5 requests to "http://reviews:9080/reviews/1"
    Then every response is served by reviews v2
    When a user opens the product page 3 times
    Then every page is served by reviews v3
    When I send 3 requests to "http://reviews:9080/health"
    Then every response has status 404 and an empty body
