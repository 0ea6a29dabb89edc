@gateways
Feature: TLS passthrough at the ingress gateway
  With tls.mode PASSTHROUGH the gateway does not terminate TLS: it reads the SNI of the
  client's handshake and passes the connection, still encrypted, to the destination of the
  VirtualService's tls route for that name. The workload terminates TLS with its own
  certificate, which the client sees through the gateway. istio.io's "Ingress Gateway
  without TLS Termination" task: nginx (my-nginx) serving nginx.example.com with the
  certificate of a Secret it mounts.

  Background:
    Given the nginx sample is running
    And the certificate "nginx.example.com" and its CA "example.com" from the secret "nginx-server-certs" of the nginx sample

  Scenario: nginx's own certificate is served through the gateway
    Given I apply:
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
            number: 443
            name: https
            protocol: HTTPS
          tls:
            mode: PASSTHROUGH
          hosts:
          - nginx.example.com
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: nginx
      spec:
        hosts:
        - nginx.example.com
        gateways:
        - mygateway
        tls:
        - match:
          - port: 443
            sniHosts:
            - nginx.example.com
          route:
          - destination:
              host: my-nginx
              port:
                number: 443
      """
    When I send 3 HTTPS requests to "/" for "nginx.example.com" through the ingress gateway trusting "example.com"
    Then every response has status 200
    And every response shows "Welcome to nginx!"
    And the certificate served is "nginx.example.com"
    # No tls route names this host: the gateway has no chain for it and closes the connection.
    When I send 1 HTTPS request to "/" for "other.example.com" through the ingress gateway trusting "example.com"
    Then every request fails with curl exit code 35 mentioning "Connection reset by peer"
