/**
 * A small authoritative DNS server for end-to-end tests, run in a test's
 * namespace:
 *
 *   deno run -A dns_server.ts ADDRESS ZONE_FILE
 *
 * Answers A and AAAA queries on ADDRESS:53 (UDP and TCP) from ZONE_FILE, a
 * JSON object { "name": ["192.0.2.1", "2001:db8::1"], … }, read again for
 * every query so a test can move a name by rewriting the file. TTL 1 s;
 * NXDOMAIN for unknown names. Each query is logged as "query NAME TYPE".
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

const [address, zoneFile] = Deno.args;
if (!address || !zoneFile) {
  console.error("usage: dns_server.ts ADDRESS ZONE_FILE");
  Deno.exit(2);
}

await startDnsListener({ hostname: address, port: 53 }, async (raw) => {
  const q = tryParseDnsMessage(raw);
  if (q instanceof Error) return dnsErrorResponse(raw, DNS_RCODE.FORMERR);
  const question = q.questions[0];
  if (!question) return encodeDnsMessage(dnsResponseTo(q, { rcode: DNS_RCODE.FORMERR }));
  const name = question.name.toLowerCase().replace(/\.$/, "");
  let zone: Record<string, string[]> = {};
  try {
    zone = JSON.parse(await Deno.readTextFile(zoneFile));
  } catch { /* rewritten meanwhile: answer from nothing */ }
  console.log(`query ${name} ${question.type}`);
  const addrs = zone[name];
  if (!addrs) return encodeDnsMessage(dnsResponseTo(q, { rcode: DNS_RCODE.NXDOMAIN, aa: true }));
  const want = question.type === DNS_TYPE.A ? "A" : question.type === DNS_TYPE.AAAA ? "AAAA" : null;
  const answers = want
    ? addrs.filter((a) => (want === "A") !== a.includes(":")).map((a) => ({
      name: question.name,
      class: DNS_CLASS_IN,
      ttl: 1,
      type: want,
      address: a,
    }))
    : [];
  return encodeDnsMessage(dnsResponseTo(q, { aa: true, answers } as never));
});
console.log("dns ready");
