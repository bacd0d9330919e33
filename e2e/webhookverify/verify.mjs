// Reads a JSON array of deliveries from standard input — each
// {"secrets":[…],"id","timestamp","signature","body"} — and checks every
// one with the standardwebhooks package under each of its secrets:
// prints "verified N" when all pass, and exits 1 naming the first failure.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const deliveries = JSON.parse(input);
let n = 0;
for (const d of deliveries) {
  for (const secret of d.secrets) {
    const headers = { "webhook-id": d.id, "webhook-timestamp": d.timestamp, "webhook-signature": d.signature };
    try {
      const payload = new Webhook(secret).verify(d.body, headers);
      if (typeof payload !== "object" || payload === null) throw new Error("no payload");
    } catch (e) {
      console.error(`delivery ${d.id} does not verify under secret #${d.secrets.indexOf(secret)}: ${e}`);
      process.exit(1);
    }
    n++;
  }
  // A tampered body must not verify.
  try {
    new Webhook(d.secrets[0]).verify(d.body + " ", { "webhook-id": d.id, "webhook-timestamp": d.timestamp, "webhook-signature": d.signature });
    console.error(`delivery ${d.id}: a tampered body verified`);
    process.exit(1);
  } catch {}
}
console.log(`verified ${n}`);
