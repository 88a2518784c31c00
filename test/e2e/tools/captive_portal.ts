/**
 * A hotel Wi-Fi captive portal for the network-awareness scenarios, run
 * inside the hotel router's namespace:
 *
 *   deno run -A captive_portal.ts ADDRESS NFT_TABLE NAME=IP...
 *
 * Until a guest posts the login form, the router's nftables table NFT_TABLE
 * (made by the test) sends every guest HTTP connection — including the
 * connector's probe to the edge's bootstrap port — here, and drops all other
 * forwarded guest traffic. Here every HTTP request is answered with a
 * redirect to the login page (the page itself for /login), and DNS on
 * ADDRESS:53 answers every name with ADDRESS. `POST /login` deletes the
 * table (the guest is let through) and DNS starts answering the real names
 * given as NAME=IP (NXDOMAIN for the rest).
 */
import { startDnsListener } from "../../../src/net/dns_io.ts";
import {
  DNS_CLASS_IN,
  DNS_RCODE,
  DNS_TYPE,
  dnsErrorResponse,
  dnsResponseTo,
  encodeDnsMessage,
  tryParseDnsMessage,
} from "../../../src/packet/dns.ts";

const [address, table, ...pairs] = Deno.args;
if (!address || !table) {
  console.error("usage: captive_portal.ts ADDRESS NFT_TABLE NAME=IP...");
  Deno.exit(2);
}
const names = new Map(pairs.map((p) => p.split("=") as [string, string]));
let signedIn = false;

const LOGIN_PAGE = `<!doctype html><title>Hotel Wi-Fi</title>
<h1>Welcome to the hotel Wi-Fi</h1>
<form method="post" action="http://${address}/login">
<label>Room <input name="room"></label> <button>Sign in</button></form>\n`;

Deno.serve({ hostname: "0.0.0.0", port: 80, onListen: () => {} }, async (req) => {
  const url = new URL(req.url);
  if (req.method === "POST" && url.pathname === "/login") {
    const form = await req.formData().catch(() => null);
    if (!form?.get("room")) return new Response("Room number needed\n", { status: 400 });
    const out = await new Deno.Command("nft", { args: ["delete", "table", "ip", table] }).output();
    signedIn = true;
    console.log(`signed in (nft exit ${out.code})`);
    return new Response("You are online. Enjoy your stay.\n");
  }
  if (signedIn) return new Response("You are online.\n");
  if (url.pathname === "/login") {
    return new Response(LOGIN_PAGE, { headers: { "Content-Type": "text/html" } });
  }
  return new Response(null, {
    status: 302,
    headers: { Location: `http://${address}/login` },
  });
});

await startDnsListener({ hostname: address, port: 53, tcp: false }, (raw) => {
  const q = tryParseDnsMessage(raw);
  if (q instanceof Error) return Promise.resolve(dnsErrorResponse(raw, DNS_RCODE.FORMERR));
  const question = q.questions[0];
  const name = question?.name.toLowerCase().replace(/\.$/, "") ?? "";
  const ip = signedIn ? names.get(name) : address;
  if (!question || question.type !== DNS_TYPE.A || !ip) {
    const rcode = ip || !question ? DNS_RCODE.NOERROR : DNS_RCODE.NXDOMAIN;
    return Promise.resolve(encodeDnsMessage(dnsResponseTo(q, { rcode, ra: true })));
  }
  return Promise.resolve(encodeDnsMessage(dnsResponseTo(q, {
    ra: true,
    answers: [{ name: question.name, class: DNS_CLASS_IN, ttl: 5, type: "A", address: ip }],
  })));
});
console.log("portal ready");
