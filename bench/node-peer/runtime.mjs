// The Lambda Runtime API loop that Node.js functions run under: import the handler (its
// init, SSM read included, runs before the first poll), then poll for events and post the
// answers, over node:http with a keep-alive agent as the managed runtime's client does. The
// managed nodejs runtime is not installable here; this is its loop without its extras.
import http from "node:http";

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

const call = (method, path, body) =>
  new Promise((resolve, reject) => {
    const request = http.request(
      `http://${api}/2018-06-01/runtime${path}`,
      { method, agent, headers: body ? { "content-type": "application/json" } : {} },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ headers: response.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    request.on("error", reject);
    request.end(body);
  });

let handler;
try {
  ({ handler } = await import("./index.mjs"));
} catch (error) {
  await call("POST", "/init/error", JSON.stringify({ errorMessage: String(error) }));
  process.exit(1);
}

for (;;) {
  const next = await call("GET", "/invocation/next");
  const id = next.headers["lambda-runtime-aws-request-id"];
  try {
    const result = await handler(JSON.parse(next.body));
    await call("POST", `/invocation/${id}/response`, JSON.stringify(result));
  } catch (error) {
    await call("POST", `/invocation/${id}/error`, JSON.stringify({ errorMessage: String(error) }));
  }
}
