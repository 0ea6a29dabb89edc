@gateways
Feature: TLS at the ingress gateway for two hosts on one port
  Two HTTPS servers of one Gateway share port 443, each with its own host and its own
  credential: the gateway tells them apart by the TLS SNI alone, so each host gets its own
  certificate and its own routes (route configuration https.443.<port name>.mygateway.default).
  The handout's lab 6.2 (mygatewayv1.yaml) with Istio's helloworld sample (Service helloworld,
  Deployment helloworld-v1) in place of the handout's own helloworld-v1 Service.

  Background:
    Given the httpbin sample is running
    And the helloworld sample is running
    And I make a root certificate "example.com"
    And I make a certificate "httpbin.example.com" signed by "example.com"
    And I make a certificate "helloworld-v1.example.com" signed by "example.com"
    And I create the TLS secret "httpbin-credential" in istio-system from "httpbin.example.com"
    And I create the TLS secret "helloworld-credential" in istio-system from "helloworld-v1.example.com"
    And I apply "mygatewayv1.yaml"
    And I apply "sdsvirtualserver.yaml"
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: helloworld-v1
      spec:
        hosts:
        - helloworld-v1.example.com
        gateways:
        - mygateway
        http:
        - match:
          - uri:
              exact: /hello
          route:
          - destination:
              host: helloworld
              port:
                number: 5000
      """

  Scenario: Each host gets its own certificate and its own backend
    When I send 3 HTTPS requests to "/hello" for "helloworld-v1.example.com" through the ingress gateway trusting "example.com"
    Then every response has status 200
    And every response shows "Hello version: v1, instance: helloworld-v1-"
    And the certificate served is "helloworld-v1.example.com"
    When I send 3 HTTPS requests to "/status/418" for "httpbin.example.com" through the ingress gateway trusting "example.com"
    Then every response has status 418
    And the certificate served is "httpbin.example.com"

  Scenario: A host no server names gets no certificate
    When I send 2 HTTPS requests to "/hello" for "other.example.com" through the ingress gateway trusting "example.com"
    Then every request fails with curl exit code 35 mentioning "Connection reset by peer"
