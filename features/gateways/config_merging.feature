@gateways
Feature: Several VirtualServices or DestinationRules for one host
  Notes claim Istio merges them all, or that the newest wins. What istiod does: the
  VirtualServices bound to a gateway for one host are merged (their routes appended,
  oldest first); for the sidecars only one VirtualService per host applies, the oldest,
  and istioctl analyze reports the conflict (IST0109). DestinationRules for one host are
  merged: subsets appended, a subset name already defined keeps its first definition.

  Background:
    Given the bookinfo sample is running

  Scenario: On a gateway, two VirtualServices for one host are merged
    Given "bookinfo-gateway.yaml" is applied
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: bookinfo-details
      spec:
        hosts:
        - "*"
        gateways:
        - bookinfo-gateway
        http:
        - match:
          - uri:
              prefix: /details
          route:
          - destination:
              host: details
              port:
                number: 9080
      """
    When I send 2 requests to "/details/0" through the ingress gateway
    Then every response has status 200
    And every response shows "William Shakespeare"
    When a user opens the product page through the ingress gateway 2 times
    Then every response has status 200

  Scenario: For the sidecars, the oldest VirtualService for a host applies
    Given "destination-rule-all.yaml" is applied
    And I apply "virtual-service-reviews-v3.yaml"
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: reviews-v2
      spec:
        hosts:
        - reviews
        http:
        - route:
          - destination:
              host: reviews
              subset: v2
      """
    When a user opens the product page 5 times
    Then every page is served by reviews v3

  @needs-istioctl
  Scenario: istioctl analyze reports two mesh VirtualServices for one host
    Given "destination-rule-all.yaml" is applied
    And I apply "virtual-service-reviews-v3.yaml"
    When I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: reviews-v2
      spec:
        hosts:
        - reviews
        http:
        - route:
          - destination:
              host: reviews
              subset: v2
      """
    Then istioctl analyze reports IST0109 The VirtualServices default/reviews,default/reviews-v2 associated with mesh gateway define the same host

  Scenario: Two DestinationRules for one host: subsets merge, the first definition wins
    Given I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata:
        name: reviews-a
      spec:
        host: reviews
        subsets:
        - name: stable
          labels:
            version: v1
      """
    And I apply:
      """
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata:
        name: reviews-b
      spec:
        host: reviews
        subsets:
        - name: stable
          labels:
            version: v2
        - name: canary
          labels:
            version: v3
      """
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
          - headers:
              end-user:
                exact: jason
          route:
          - destination:
              host: reviews
              subset: canary
        - route:
          - destination:
              host: reviews
              subset: stable
      """
    When a user opens the product page 5 times
    Then every page is served by reviews v1
    When jason logs in
    And jason opens the product page 5 times
    Then every page is served by reviews v3
