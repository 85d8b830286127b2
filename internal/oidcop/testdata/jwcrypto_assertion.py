"""Makes a workload key pair and client assertions with jwcrypto, an
implementation independent of Warden's (go-jose).

  jwcrypto_assertion.py keygen ALG      -> {"private": JWK, "public": JWK}
  jwcrypto_assertion.py sign PRIVATE_JWK CLIENT AUD [EXP_OFFSET]
                                        -> the compact JWS on stdout
"""
import json
import sys
import time
import uuid

from jwcrypto import jwk, jwt


def keygen(alg):
    if alg == "ES256":
        key = jwk.JWK.generate(kty="EC", crv="P-256")
    else:
        key = jwk.JWK.generate(kty="RSA", size=2048)
    kid = key.thumbprint()
    pub = json.loads(key.export_public())
    pub.update({"kid": kid, "alg": alg, "use": "sig"})
    priv = json.loads(key.export_private())
    priv.update({"kid": kid, "alg": alg})
    print(json.dumps({"private": priv, "public": pub}))


def sign(private, client, aud, exp_offset=60):
    key = jwk.JWK(**json.loads(private))
    now = int(time.time())
    claims = {"iss": client, "sub": client, "aud": aud, "iat": now,
              "exp": now + int(exp_offset), "jti": str(uuid.uuid4())}
    header = {"alg": key.get("alg"), "kid": key.get("kid"), "typ": "JWT"}
    token = jwt.JWT(header=header, claims=claims)
    token.make_signed_token(key)
    print(token.serialize())


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        keygen(sys.argv[2])
    else:
        sign(*sys.argv[2:])
