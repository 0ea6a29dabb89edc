@gateways
Feature: TLS at the ingress gateway for one host
  An HTTPS server of a Gateway terminates TLS with the certificate of the Kubernetes Secret
  its credentialName names, which must be in the gateway's own namespace (istio-system):
  istiod hands it to the gateway over SDS. A client names the host in the URL and pins it to
  the gateway's address (curl --resolve), so the name is also the TLS SNI the gateway picks
  the certificate by; it trusts the CA that signed the certificate (--cacert). Replacing the
  Secret rotates the certificate without touching the Gateway. The handout's lab 6.1
  (sdsgateway.yaml, sdsvirtualserver.yaml) with the scenario's own CA; httpbin is the Istio
  sample's (its /status/418 is a teapot too).

  Background:
    Given the httpbin sample is running
    And I make a root certificate "example.com"
    And I make a certificate "httpbin.example.com" signed by "example.com"

  Scenario: httpbin.example.com is served over HTTPS with the secret's certificate
    Given I create the TLS secret "httpbin-credential" in istio-system from "httpbin.example.com"
    And I apply "sdsgateway.yaml"
    And I apply "sdsvirtualserver.yaml"
    When I send 3 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com"
    Then every response has status 418
    And the certificate served is "httpbin.example.com"
    # The port speaks TLS only: a plain HTTP request matches no filter chain.
    When I send 2 plain HTTP requests to "/status/418" for "httpbin.example.com" to the ingress gateway's HTTPS port
    Then every request fails with curl exit code 56 mentioning "Connection reset by peer"

  Scenario: Rotating the credential: the new certificate is served, the old CA no longer verifies it
    Given I create the TLS secret "httpbin-credential" in istio-system from "httpbin.example.com"
    And I apply "sdsgateway.yaml"
    And I apply "sdsvirtualserver.yaml"
    When I send 2 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com"
    Then the certificate served is "httpbin.example.com"
    # The handout deletes the secret and makes it again from a new CA of the same subject.
    When I delete the secret "httpbin-credential" in istio-system
    And I make a root certificate "new_certificates/example.com"
    And I make a certificate "new_certificates/httpbin.example.com" signed by "new_certificates/example.com"
    And I create the TLS secret "httpbin-credential" in istio-system from "new_certificates/httpbin.example.com"
    And I send 3 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "new_certificates/example.com"
    Then every response has status 418
    And the certificate served is "new_certificates/httpbin.example.com"
    # OpenSSL checks the new certificate's signature with the old CA's key (same subject):
    # "invalid padding" or "data too large for modulus", depending on the keys.
    When I send 1 HTTPS request to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com"
    Then every request fails with curl exit code 35 mentioning "rsa routines"

  Scenario: An HTTP server with httpsRedirect sends every request to https
    Given I create the TLS secret "httpbin-credential" in istio-system from "httpbin.example.com"
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: mygateway
      spec:
        selector:
          istio: ingressgateway
        servers:
        - port:
            number: 80
            name: http
            protocol: HTTP
          tls:
            httpsRedirect: true
          hosts:
          - httpbin.example.com
        - port:
            number: 443
            name: https
            protocol: HTTPS
          tls:
            mode: SIMPLE
            credentialName: httpbin-credential
          hosts:
          - httpbin.example.com
      """
    And I apply "sdsvirtualserver.yaml"
    When I send 2 requests to "/status/418" through the ingress gateway with Host "httpbin.example.com"
    Then every response has status 301
    And every response has header "location: https://httpbin.example.com/status/418"
    When I send 2 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com"
    Then every response has status 418

  # On a cluster the warning comes from istioctl analyze (make kind-up downloads it).
  @needs-istioctl
  Scenario: A credentialName whose secret does not exist: istioctl analyze's IST0101, no TLS
    When I apply "sdsgateway.yaml"
    Then istioctl analyze reports IST0101 Referenced credentialName not found: "httpbin-credential"
    When I apply "sdsvirtualserver.yaml"
    And I send 1 HTTPS request to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com"
    Then no HTTPS response arrives
