@security
Feature: Changing the proxies' Envoy config with EnvoyFilter
  An EnvoyFilter patches the Envoy config istiod generates, for the proxies it selects: in
  istio-system it applies in every namespace, elsewhere in its own, narrowed by a
  `workloadSelector`. Each patch matches a listener, filter chain, filter, route
  configuration, virtual host, route or cluster in a context (SIDECAR_INBOUND,
  SIDECAR_OUTBOUND, GATEWAY or ANY) and merges into it, inserts or adds next to it,
  replaces or removes it. Envoy then does the work. A patch whose match finds nothing
  changes nothing, and on a cluster nothing says so; a patch Envoy cannot load is
  rejected by the proxy (a NACK), which keeps its previous config.

  Background:
    Given the bookinfo sample is running

  Scenario: A MERGE into a virtual host adds a response header
    Given I apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: EnvoyFilter
      metadata:
        name: productpage-response-header
      spec:
        configPatches:
        - applyTo: VIRTUAL_HOST
          match:
            context: SIDECAR_OUTBOUND
            routeConfiguration:
              vhost:
                name: productpage.default.svc.cluster.local:9080
          patch:
            operation: MERGE
            value:
              response_headers_to_add:
              - header: {key: x-envoyfilter, value: merged}
      """
    When I send 3 requests to "http://productpage:9080/productpage"
    Then every response has header "x-envoyfilter: merged"
    When I send 3 requests to "http://details:9080/details/0"
    Then no response has header "x-envoyfilter"

  Scenario: A route inserted first answers before the routes istiod made
    Given I apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: EnvoyFilter
      metadata:
        name: productpage-teapot
      spec:
        configPatches:
        - applyTo: HTTP_ROUTE
          match:
            context: SIDECAR_OUTBOUND
            routeConfiguration:
              portNumber: 9080
              vhost:
                name: productpage.default.svc.cluster.local:9080
          patch:
            operation: INSERT_FIRST
            value:
              name: teapot
              match: {prefix: /teapot}
              direct_response:
                status: 418
                body: {inline_string: "short and stout"}
      """
    When I send 2 requests to "http://productpage:9080/teapot"
    Then every response has status 418 and body "short and stout"
    When I send 2 requests to "http://productpage:9080/productpage"
    Then every response has status 200

  Scenario: Removing the fault filter turns a VirtualService's fault injection off
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: details
      spec:
        hosts: [details]
        http:
        - fault:
            abort: {httpStatus: 555, percentage: {value: 100}}
          route:
          - destination: {host: details}
      """
    When I send 3 requests to "http://details:9080/details/0"
    Then every response has status 555
    When I apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: EnvoyFilter
      metadata:
        name: no-fault-filter
      spec:
        configPatches:
        - applyTo: HTTP_FILTER
          match:
            context: SIDECAR_OUTBOUND
            listener:
              portNumber: 9080
              filterChain:
                filter:
                  name: envoy.filters.network.http_connection_manager
                  subFilter:
                    name: envoy.filters.http.fault
          patch:
            operation: REMOVE
      """
    And I send 3 requests to "http://details:9080/details/0"
    Then every response has status 200
    And the client's proxy has no "envoy.filters.http.fault" on its outbound port 9080

  Scenario: Filters apply in priority order
    # both set the same header on productpage's virtual host; the one with the higher
    # priority applies last, so its value is the one Envoy sends
    Given I apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: EnvoyFilter
      metadata:
        name: header-last
      spec:
        priority: 10
        configPatches:
        - applyTo: VIRTUAL_HOST
          match:
            context: SIDECAR_OUTBOUND
            routeConfiguration:
              vhost: {name: "productpage.default.svc.cluster.local:9080"}
          patch:
            operation: MERGE
            value:
              response_headers_to_add:
              - header: {key: x-envoyfilter, value: priority-10}
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
      ---
      apiVersion: networking.istio.io/v1alpha3
      kind: EnvoyFilter
      metadata:
        name: header-first
      spec:
        priority: -10
        configPatches:
        - applyTo: VIRTUAL_HOST
          match:
            context: SIDECAR_OUTBOUND
            routeConfiguration:
              vhost: {name: "productpage.default.svc.cluster.local:9080"}
          patch:
            operation: MERGE
            value:
              response_headers_to_add:
              - header: {key: x-envoyfilter, value: priority-minus-10}
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
      """
    When I send 3 requests to "http://productpage:9080/productpage"
    Then every response has header "x-envoyfilter: priority-10"

  @local-mesh
  Scenario: A patch whose match finds nothing changes nothing, and the local mesh says so
    When I apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: EnvoyFilter
      metadata:
        name: wrong-port
        namespace: istio-system
      spec:
        workloadSelector:
          labels: {app: productpage}
        configPatches:
        - applyTo: HTTP_FILTER
          match:
            context: SIDECAR_INBOUND
            listener:
              portNumber: 9999
              filterChain:
                filter: {name: envoy.filters.network.http_connection_manager}
          patch:
            operation: INSERT_BEFORE
            value:
              name: envoy.filters.http.local_ratelimit
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                stat_prefix: http_local_rate_limiter
      """
    Then applying it warned that patch 0 of EnvoyFilter istio-system/wrong-port matches nothing
    And the productpage proxy has no "envoy.filters.http.local_ratelimit" on its inbound port 9080

  @local-mesh
  Scenario: A patch the proxy rejects leaves its previous config in place
    # a token bucket needs a fill_interval: Envoy refuses the listener (NACK)
    When I try to apply:
      """
      apiVersion: networking.istio.io/v1alpha3
      kind: EnvoyFilter
      metadata:
        name: bucket-without-interval
        namespace: istio-system
      spec:
        workloadSelector:
          labels: {app: productpage}
        configPatches:
        - applyTo: HTTP_FILTER
          match:
            context: SIDECAR_INBOUND
            listener:
              filterChain:
                filter: {name: envoy.filters.network.http_connection_manager}
          patch:
            operation: INSERT_BEFORE
            value:
              name: envoy.filters.http.local_ratelimit
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                stat_prefix: http_local_rate_limiter
                token_bucket: {max_tokens: 1}
      """
    Then the proxies rejected it, and the error names EnvoyFilter "istio-system/bucket-without-interval"
    When I send 3 requests to "http://productpage:9080/productpage"
    Then every response has status 200
    And the productpage proxy has no "envoy.filters.http.local_ratelimit" on its inbound port 9080
