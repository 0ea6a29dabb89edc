"""JWTs a scenario signs itself, and the key set that verifies them.

The JWT lab downloads Istio's demo token and points istiod at a JWKS on GitHub; offline,
a scenario is its own issuer instead: an RSA key of its own, its public half as the
inline ``jwks`` of the RequestAuthentication, and tokens with the claims of Istio's
samples (``iss`` and ``sub`` testing@secure.istio.io, like ``demo.jwt``; a ``groups``
claim, like ``groups-scope.jwt``). Signing and the JWK are PyJWT's.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

#: the issuer (and subject) of Istio's sample tokens
DEMO_ISSUER = "testing@secure.istio.io"
#: how far in the past an expired token's ``exp`` is: far beyond Envoy's 60 s of allowed
#: clock skew (jwt_authn ``clock_skew_seconds`` default), so it is expired for any verifier
EXPIRED_AGO_S = 3600


class Issuer:
    """An RSA-signing issuer: ``jwks`` verifies what ``token`` signs."""

    def __init__(self, issuer: str = DEMO_ISSUER, kid: str | None = None):
        self.issuer = issuer
        self.kid = kid or secrets.token_hex(8)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwks(self) -> str:
        """The JSON Web Key Set of the public key, as a RequestAuthentication's ``jwks``."""
        key = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return json.dumps({"keys": [{**key, "kid": self.kid, "alg": "RS256", "use": "sig"}]})

    def token(self, *, expired: bool = False, **claims: Any) -> str:
        """A signed token: ``iss`` and ``sub`` the issuer, valid for an hour (or expired an
        hour ago), with ``claims`` added."""
        now = int(time.time())
        exp = now - EXPIRED_AGO_S if expired else now + 3600
        payload = {"iss": self.issuer, "sub": self.issuer, "iat": now - 2 * EXPIRED_AGO_S
                   if expired else now, "exp": exp, **claims}
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid})


def forged(issuer: Issuer) -> Issuer:
    """An issuer with the same name and key id but another key: what it signs fails
    verification against ``issuer``'s key set (a token from another key id would fail
    earlier, on the key lookup)."""
    return Issuer(issuer.issuer, kid=issuer.kid)


def claims_of(token: str) -> dict:
    """A token's payload, unverified: what ``cut -d. -f2 | base64 -d`` shows a learner."""
    return jwt.decode(token, options={"verify_signature": False})
