@gateways
Feature: TCP traffic shifting
  Istio task "TCP Traffic Shifting": move TCP traffic from tcp-echo v1 to v2 by weights,
  through the ingress gateway's TCP port. tcp-echo answers each line with its prefix:
  "one" from v1, "two" from v2. A Gateway opens port 31400 with protocol TCP; a
  VirtualService's tcp route sends what arrives there to a subset. From outside the mesh a
  learner sends the date with `(date; sleep 1) | nc $INGRESS_HOST $TCP_INGRESS_PORT`,
  each time a new connection, and Envoy picks a weighted destination per connection. The
  split check sends as many as it needs to tell 80/20 from a split 10 points off.

  Background:
    Given the tcp-echo sample is running

  Scenario: All TCP traffic goes to v1, then 20 % of it to v2
    Given I apply "tcp-echo-all-v1.yaml"
    When I send the date to the ingress gateway's TCP port 20 times
    Then every reply starts with "one"
    When I apply "tcp-echo-20-v2.yaml"
    And I keep sending the date to the ingress gateway's TCP port
    Then the replies are split one 80% and two 20%

  Scenario: A TCP server without a tcp route opens no port
    # istiod builds a gateway listener for a TCP server only from a VirtualService's tcp
    # route for its port; without one the port refuses connections
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata:
        name: tcp-echo-gateway
      spec:
        selector:
          istio: ingressgateway
        servers:
        - port:
            number: 31400
            name: tcp
            protocol: TCP
          hosts:
          - "*"
      """
    When I send the date to the ingress gateway's TCP port 2 times
    Then the ingress gateway's TCP port refuses the connection
