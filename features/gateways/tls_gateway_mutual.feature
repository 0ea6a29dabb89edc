@gateways
Feature: Mutual TLS at the ingress gateway
  With tls.mode MUTUAL the gateway also asks the client for a certificate and accepts only
  one signed by the CA in the credential's ca.crt (or in a Secret of its own named
  <credentialName>-cacert). With TLS 1.3 curl completes its side of the handshake and sends
  the request before the gateway's alert arrives, so a missing or foreign client
  certificate is no handshake error (35) for curl: the gateway's alert ends the session
  afterwards. curl 7.88 then fails on its next write or read (exit 16, 55 or 56, whichever
  comes first against Envoy); a client that reads first always gets the alert. The
  handout's lab 6.3 (a generic secret with tls.key, tls.crt and ca.crt; mygatewayv2.yaml).

  Background:
    Given the httpbin sample is running
    And I make a root certificate "example.com"
    And I make a certificate "httpbin.example.com" signed by "example.com"

  Scenario: Without a client certificate the gateway refuses the request
    Given I create the generic secret "httpbin-credential" in istio-system from "httpbin.example.com" and the CA "example.com"
    And I apply "mygatewayv2.yaml"
    And I apply "sdsvirtualserver.yaml"
    When I send 2 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com"
    Then no HTTPS response arrives
    And the server ends the handshake with the TLS alert "certificate required"

  Scenario: A client certificate signed by the CA gets through
    Given I create the generic secret "httpbin-credential" in istio-system from "httpbin.example.com" and the CA "example.com"
    And I apply "mygatewayv2.yaml"
    And I apply "sdsvirtualserver.yaml"
    And I make a client certificate "client.example.com" signed by "example.com"
    When I send 3 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com" with the client certificate "client.example.com"
    Then every response has status 418
    And the certificate served is "httpbin.example.com"

  Scenario: A client certificate from another CA is refused
    Given I create the generic secret "httpbin-credential" in istio-system from "httpbin.example.com" and the CA "example.com"
    And I apply "mygatewayv2.yaml"
    And I apply "sdsvirtualserver.yaml"
    And I make a root certificate "other/other-ca.example.com"
    And I make a client certificate "other/client.example.com" signed by "other/other-ca.example.com"
    When I send 2 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com" with the client certificate "other/client.example.com"
    Then no HTTPS response arrives
    And the server ends the handshake with the TLS alert "unknown ca"

  Scenario: The CA can come from its own secret, <credentialName>-cacert
    Given I create the TLS secret "httpbin-credential" in istio-system from "httpbin.example.com"
    And I create the CA secret "httpbin-credential-cacert" in istio-system from the CA "example.com"
    And I apply "mygatewayv2.yaml"
    And I apply "sdsvirtualserver.yaml"
    And I make a client certificate "client.example.com" signed by "example.com"
    When I send 2 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com" with the client certificate "client.example.com"
    Then every response has status 418
    When I send 2 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com"
    Then no HTTPS response arrives
    And the server ends the handshake with the TLS alert "certificate required"
