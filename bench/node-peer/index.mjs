// GET /auth/v1/user/me, as most teams would write the function: the AWS SDK for JavaScript
// v3 and jose, the signing key read from its SSM SecureString at init (top-level await, so
// it runs in Lambda's init phase), the session and the account read in one BatchGetItem,
// as the Rust function reads them. The benchmark runs it beside the Rust function.
import { createPublicKey } from "node:crypto";
import { DynamoDBClient, BatchGetItemCommand } from "@aws-sdk/client-dynamodb";
import { SSMClient, GetParameterCommand } from "@aws-sdk/client-ssm";
import { jwtVerify } from "jose";

const table = process.env.AUTH_TABLE_NAME;
const audience = process.env.AUTH_JWT_AUDIENCE ?? "cloudbase-association";
const dynamodb = new DynamoDBClient({});

const { Parameter } = await new SSMClient({}).send(
  new GetParameterCommand({ Name: process.env.AUTH_JWT_PRIVATE_KEY_PARAMETER, WithDecryption: true }),
);
const publicKey = createPublicKey(Parameter.Value);

const answer = (statusCode, body) => ({
  statusCode,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
const unauthorized = () => answer(401, { error: "unauthenticated", error_description: "sign in again" });

export const handler = async (event) => {
  const token = (event.headers?.authorization ?? "").replace(/^Bearer /, "");
  if (!token) return unauthorized();
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(token, publicKey, {
      algorithms: ["ES256"],
      issuer: `https://${event.requestContext.domainName}/auth/v1`,
      audience,
    }));
  } catch {
    return unauthorized();
  }
  const session = { pk: { S: `SESSION#${claims.sid}` } };
  const user = { pk: { S: `USER#${claims.sub}` } };
  const { Responses } = await dynamodb.send(
    new BatchGetItemCommand({
      RequestItems: { [table]: { Keys: [session, user], ConsistentRead: true } },
    }),
  );
  const items = Responses?.[table] ?? [];
  const found = (pk) => items.find((item) => item.pk.S === pk.pk.S);
  const sessionItem = found(session);
  const userItem = found(user);
  const now = Math.floor(Date.now() / 1000);
  if (
    !sessionItem ||
    !userItem ||
    sessionItem.revoked?.BOOL ||
    sessionItem.user_id?.S !== claims.sub ||
    Number(sessionItem.expires_at?.N ?? 0) <= now
  ) {
    return unauthorized();
  }
  return answer(200, {
    sub: claims.sub,
    username: userItem.username?.S,
    email: userItem.email?.S,
    phone_number: userItem.phone?.S,
    name: userItem.name?.S,
  });
};
