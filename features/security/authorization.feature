@security
Feature: Authorization policies
  An AuthorizationPolicy makes the sidecars of the workloads it selects (its namespace, or
  every namespace from istio-system; its selector's labels) check each request. With no
  policy everything is allowed; once an ALLOW policy selects a workload, only what one
  allows gets through; a DENY policy refuses what it matches, and DENY wins over ALLOW.
  A refused request gets 403 "RBAC: access denied" from the sidecar. Rules name sources
  (principals, namespaces: the peer's mTLS identity), operations (methods, paths) and
  conditions (when). AuthorizationPolicy counts nothing: a "rate limit" written as one is
  refused (request.count is not an attribute), and its header condition alone denies.

  Scenario: A deny-all policy refuses every request, and no ALLOW policy helps
    Given the bookinfo sample is running
    And "bookinfo-gateway.yaml" is applied
    And I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: deny-all
      spec:
        action: DENY
        # rules 字段有一个空白规则，策略将始终匹配。
        rules:
        - {}
      """
    When I send 2 requests to "http://productpage:9080/productpage"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When I send 2 requests to "/productpage" through the ingress gateway
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: allow-productpage
      spec:
        selector:
          matchLabels:
            app: productpage
        action: ALLOW
        rules:
        - {}
      """
    And I send 2 requests to "http://productpage:9080/productpage"
    Then every response has status 403
    And every response shows "RBAC: access denied"

  Scenario: Allow-nothing refuses everything until an ALLOW policy allows something
    Given the httpbin sample is running
    And I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: allow-nothing
      spec: {}
      """
    When I send 2 requests to "http://httpbin:8000/ip"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: allow-ip
      spec:
        selector:
          matchLabels:
            app: httpbin
        rules:
        - to:
          - operation:
              paths: ["/ip"]
      """
    And I send 2 requests to "http://httpbin:8000/ip"
    Then every response has status 200
    When I send 2 requests to "http://httpbin:8000/headers"
    Then every response has status 403

  Scenario: An ALLOW policy on methods and paths allows those operations only
    Given the httpbin sample is running
    And I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: httpbin-get
      spec:
        selector:
          matchLabels:
            app: httpbin
        action: ALLOW
        rules:
        - to:
          - operation:
              methods: ["GET"]
              paths: ["/ip", "/status/*"]
              notPaths: ["/status/418"]
      """
    When I send 2 requests to "http://httpbin:8000/ip"
    Then every response has status 200
    When I send 2 requests to "http://httpbin:8000/status/201"
    Then every response has status 201
    When I send 2 POST requests to "http://httpbin:8000/ip"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When I send 2 requests to "http://httpbin:8000/headers"
    Then every response has status 403
    When I send 2 requests to "http://httpbin:8000/status/418"
    Then every response has status 403

  Scenario: DENY wins over ALLOW
    Given the httpbin sample is running
    And I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: allow-all
      spec:
        selector:
          matchLabels:
            app: httpbin
        action: ALLOW
        rules:
        - {}
      ---
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: deny-headers
      spec:
        selector:
          matchLabels:
            app: httpbin
        action: DENY
        rules:
        - to:
          - operation:
              paths: ["/headers"]
      """
    When I send 2 requests to "http://httpbin:8000/headers"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When I send 2 requests to "http://httpbin:8000/ip"
    Then every response has status 200

  Scenario: Only the reviews service account may call ratings
    Given the bookinfo sample is running
    And I apply "destination-rule-all.yaml"
    And I apply "virtual-service-reviews-v3.yaml"
    And I apply:
      """
      apiVersion: security.istio.io/v1beta1
      kind: AuthorizationPolicy
      metadata:
        name: allow-list-by-sa
      spec:
        selector:
          matchLabels:
            app: ratings
        action: ALLOW
        rules:
        - from:
          - source:
              principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]
      """
    When a user opens the product page 3 times
    Then every page shows red stars
    When I send 2 requests to "http://ratings:9080/ratings/0"
    Then every response has status 403
    And every response shows "RBAC: access denied"

  Scenario: The namespaces rule lets every client of the namespace call ratings, and no other
    Given the bookinfo sample is running
    And the sleep sample is running in namespace foo
    And the sleep sample is running in namespace legacy without a sidecar
    And I apply:
      """
      apiVersion: security.istio.io/v1beta1
      kind: AuthorizationPolicy
      metadata:
        name: allow-list-by-sa
      spec:
        selector:
          matchLabels:
            app: ratings
        action: ALLOW
        rules:
        - from:
          - source:
              principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]
        - from:
          - source:
              namespaces: ["default"]
      """
    When I send 2 requests to "http://ratings:9080/ratings/0"
    Then every response has status 200
    When sleep in foo sends 2 requests to "http://ratings.default:9080/ratings/0"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When sleep in legacy sends 2 requests to "http://ratings.default:9080/ratings/0"
    Then every response has status 403
    And every response shows "RBAC: access denied"

  Scenario: A rate limit written as an AuthorizationPolicy is refused: request.count is no attribute
    Given the httpbin sample is running
    When I try to apply:
      """
      apiVersion: security.istio.io/v1beta1
      kind: AuthorizationPolicy
      metadata:
        name: rate-limit-bots
      spec:
        selector:
          matchLabels:
            app: httpbin
        action: DENY
        rules:
        - when:
          - key: request.headers[user-agent]
            values: ["Bot"]          # 匹配 Header
          - key: request.count
            values: ["20"]           # 每分钟最多 20 次
      """
    Then applying it fails at "spec.rules[0].when[1].key" mentioning "unknown attribute: request.count"
    When I send 2 requests to "http://httpbin:8000/headers" with header "User-Agent: Bot"
    Then every response has status 200

  Scenario: The header condition alone denies every Bot request, the first one too
    Given the httpbin sample is running
    And I apply:
      """
      apiVersion: security.istio.io/v1beta1
      kind: AuthorizationPolicy
      metadata:
        name: rate-limit-bots
      spec:
        selector:
          matchLabels:
            app: httpbin
        action: DENY
        rules:
        - when:
          - key: request.headers[user-agent]
            values: ["Bot"]
      """
    When I send 3 requests to "http://httpbin:8000/headers" with header "User-Agent: Bot"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When I send 3 requests to "http://httpbin:8000/headers"
    Then every response has status 200

  Scenario: On a TCP port a denial closes the connection, and an ALLOW rule on HTTP fields allows nothing
    # a TCP connection has no method: istiod leaves such an ALLOW rule out of the TCP
    # filter chain, so the policy allows no connection
    Given the tcp-echo sample is running
    And I apply "tcp-echo-all-v1.yaml"
    And I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: tcp-echo-get
      spec:
        selector:
          matchLabels:
            app: tcp-echo
        action: ALLOW
        rules:
        - to:
          - operation:
              methods: ["GET"]
      """
    When I send the date to the ingress gateway's TCP port 3 times
    Then every connection is closed without a reply
    When I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: tcp-echo-from-gateway
      spec:
        selector:
          matchLabels:
            app: tcp-echo
        action: ALLOW
        rules:
        - from:
          - source:
              principals: ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]
      """
    And I send the date to the ingress gateway's TCP port 3 times
    Then every reply starts with "one"
