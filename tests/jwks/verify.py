"""Verifies access tokens as a Python backend would: PyJWT's PyJWKClient fetches the keys from
the jwks_uri of the issuer's discovery document. Reads {"discovery", "audience", "tokens":
{name: token}} on stdin; prints {name: "ok" | "<error class>: <message>"}."""

import json
import sys
import urllib.request

import jwt

request = json.load(sys.stdin)
with urllib.request.urlopen(request["discovery"], timeout=10) as answer:
    discovery = json.load(answer)
keys = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False, timeout=10)
results = {}
for name, token in request["tokens"].items():
    try:
        key = keys.get_signing_key_from_jwt(token)
        jwt.decode(
            token,
            key.key,
            algorithms=["ES256"],
            audience=request["audience"],
            issuer=discovery["issuer"],
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        results[name] = "ok"
    except Exception as error:  # every refusal is an answer here
        results[name] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
