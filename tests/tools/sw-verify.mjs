// sw-verify.mjs -- check hookq's signatures with the Standard Webhooks reference library.
//
// Reads JSON lines from stdin:
//   {"secret": "whsec_...", "headers": {"webhook-id": ..., ...}, "body": "..."}
// optional: "body_b64" instead of "body" (exact bytes), "now" (unix seconds to verify at,
// for fixed test vectors whose timestamp is outside the library's 5-minute window).
// Prints one line per input line, in order: "ok" or "bad: <reason>". Exit 0 unless stdin
// could not be read; a bad signature is an answer, not an error.
import { createInterface } from "node:readline";
import { Webhook } from "standardwebhooks";

function verifyOne(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return `bad: input is not JSON: ${e.message}`;
  }
  if (typeof req.secret !== "string" || typeof req.headers !== "object" || req.headers === null) {
    return "bad: input needs secret (string) and headers (object)";
  }
  let payload;
  if (typeof req.body_b64 === "string") {
    payload = Buffer.from(req.body_b64, "base64");
  } else if (typeof req.body === "string") {
    payload = req.body;
  } else {
    return "bad: input needs body (string) or body_b64";
  }
  const realNow = Date.now;
  try {
    if (typeof req.now === "number") {
      Date.now = () => req.now * 1000;
    }
    new Webhook(req.secret).verify(payload, req.headers, { jsonParse: false });
    return "ok";
  } catch (e) {
    return `bad: ${e.message}`;
  } finally {
    Date.now = realNow;
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line.trim() === "") {
    continue;
  }
  process.stdout.write(verifyOne(line) + "\n");
}
