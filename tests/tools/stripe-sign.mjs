// stripe-sign.mjs -- Stripe-Signature headers made by Stripe's own library, for tests of
// hookq's inbound verification (the `stripe` package's webhooks.generateTestHeaderString).
//
// Reads JSON lines from stdin: {"payload": "...", "secret": "whsec_...", "timestamp": <unix s>}
// ("timestamp" optional: now). Prints one line per input line, in order: the header value
// ("t=...,v1=..."), or "error: <message>". Exit 0 unless stdin could not be read.
import { createInterface } from "node:readline";
import Stripe from "stripe";

// The key is never used: header generation is local, no request is made.
const stripe = new Stripe("sk_test_unused");

function signOne(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return `error: input is not JSON: ${e.message}`;
  }
  if (typeof req.payload !== "string" || typeof req.secret !== "string") {
    return "error: input needs payload (string) and secret (string)";
  }
  try {
    return stripe.webhooks.generateTestHeaderString({
      payload: req.payload,
      secret: req.secret,
      timestamp: typeof req.timestamp === "number" ? req.timestamp : undefined,
    });
  } catch (e) {
    return `error: ${e.message}`;
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line.trim() === "") {
    continue;
  }
  process.stdout.write(signOne(line) + "\n");
}
