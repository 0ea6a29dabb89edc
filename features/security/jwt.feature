@security
Feature: JWT authentication and authorization
  The workshop's lab 8. A RequestAuthentication makes httpbin's sidecar verify the JWT a
  request carries: a bad token gets 401, but a request without a token still passes. An
  AuthorizationPolicy on requestPrincipals (<iss>/<sub>) then requires a valid token: no
  token gets 403. The handout downloads Istio's demo token and has istiod fetch the key set
  from GitHub; here the scenario signs its own tokens (issuer and subject
  testing@secure.istio.io, like demo.jwt) and puts its key set inline in place of jwksUri.

  Background:
    Given the httpbin and sleep samples are running in namespace foo

  Scenario: Without any policy, sleep in foo reaches httpbin
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/ip"
    Then every response has status 200

  Scenario: A request authentication refuses an invalid token but lets a request without one pass
    Given I apply, with the scenario's key set in place of jwksUri:
      """
      apiVersion: "security.istio.io/v1beta1"
      kind: "RequestAuthentication"
      metadata:
        name: "jwt-example"
        namespace: foo
      spec:
        selector:
          matchLabels:
            app: httpbin
        jwtRules:
        - issuer: "testing@secure.istio.io"
          jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.5/security/tools/jwt/samples/jwks.json"
      """
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with header "Authorization: Bearer invalidToken"
    Then every response has status 401
    And every response shows "Jwt is not in the form of Header.Payload.Signature"
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers"
    Then every response has status 200
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with a valid token
    Then every response has status 200

  Scenario: An expired token, or one signed by another key, is refused
    Given I apply, with the scenario's key set in place of jwksUri:
      """
      apiVersion: "security.istio.io/v1beta1"
      kind: "RequestAuthentication"
      metadata:
        name: "jwt-example"
        namespace: foo
      spec:
        selector:
          matchLabels:
            app: httpbin
        jwtRules:
        - issuer: "testing@secure.istio.io"
          jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.5/security/tools/jwt/samples/jwks.json"
      """
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with an expired token
    Then every response has status 401
    And every response shows "Jwt is expired"
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with a token signed by another key
    Then every response has status 401
    And every response shows "Jwt verification fails"

  Scenario: With the require-jwt policy, only a request with a valid token gets through
    Given I apply, with the scenario's key set in place of jwksUri:
      """
      apiVersion: "security.istio.io/v1beta1"
      kind: "RequestAuthentication"
      metadata:
        name: "jwt-example"
        namespace: foo
      spec:
        selector:
          matchLabels:
            app: httpbin
        jwtRules:
        - issuer: "testing@secure.istio.io"
          jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.5/security/tools/jwt/samples/jwks.json"
      """
    And I apply:
      """
      apiVersion: security.istio.io/v1beta1
      kind: AuthorizationPolicy
      metadata:
        name: require-jwt
        namespace: foo
      spec:
        selector:
          matchLabels:
            app: httpbin
        action: ALLOW
        rules:
        - from:
          - source:
             requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
      """
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with a valid token
    Then every response has status 200
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with an expired token
    Then every response has status 401
    And every response shows "Jwt is expired"

  Scenario: A claim rule lets only the tokens of group1 through
    Given I apply, with the scenario's key set in place of jwksUri:
      """
      apiVersion: "security.istio.io/v1beta1"
      kind: "RequestAuthentication"
      metadata:
        name: "jwt-example"
        namespace: foo
      spec:
        selector:
          matchLabels:
            app: httpbin
        jwtRules:
        - issuer: "testing@secure.istio.io"
          jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.5/security/tools/jwt/samples/jwks.json"
      """
    And I apply:
      """
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: require-jwt
        namespace: foo
      spec:
        selector:
          matchLabels:
            app: httpbin
        action: ALLOW
        rules:
        - from:
          - source:
              requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
          when:
          - key: request.auth.claims[groups]
            values: ["group1"]
      """
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with a token in group "group1"
    Then every response has status 200
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with a token in group "group2"
    Then every response has status 403
    And every response shows "RBAC: access denied"
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with a valid token
    Then every response has status 403

  Scenario: A key set that is not JSON is refused, naming the field
    When I try to apply:
      """
      apiVersion: security.istio.io/v1
      kind: RequestAuthentication
      metadata:
        name: jwt-example
        namespace: foo
      spec:
        selector:
          matchLabels:
            app: httpbin
        jwtRules:
        - issuer: "testing@secure.istio.io"
          jwks: "https://raw.githubusercontent.com/istio/istio/release-1.5/security/tools/jwt/samples/jwks.json"
      """
    Then applying it fails at "spec.jwtRules[0].jwks" mentioning "jwks parse error"
    When sleep in foo sends 2 requests to "http://httpbin.foo:8000/headers" with header "Authorization: Bearer invalidToken"
    Then every response has status 200
