// Verifies access tokens as a Node backend would: jose's createRemoteJWKSet fetches the keys
// from the jwks_uri of the issuer's discovery document. Reads {"discovery", "audience",
// "tokens": {name: token}} on stdin; prints {name: "ok" | "<error code>: <message>"}.
// (Not a test file of the SDK suite: tests/jwks.rs runs it.)
import { createRemoteJWKSet, jwtVerify } from 'jose';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
const discovery = await (await fetch(request.discovery)).json();
const keys = createRemoteJWKSet(new URL(discovery.jwks_uri));
const results = {};
for (const [name, token] of Object.entries(request.tokens)) {
  try {
    await jwtVerify(token, keys, {
      issuer: discovery.issuer,
      audience: request.audience,
      algorithms: ['ES256'],
      requiredClaims: ['exp', 'iss', 'aud', 'sub'],
    });
    results[name] = 'ok';
  } catch (error) {
    results[name] = `${error.code ?? error.name}: ${error.message}`;
  }
}
console.log(JSON.stringify(results));
