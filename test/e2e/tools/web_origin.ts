/**
 * Test tool: the "internet" of the web proxy tests, inside its namespace.
 * Makes its own CA ("Lab Internet CA", written to OUTDIR/ca.crt) and serves
 *
 * - HTTP :80 on ADDR1 and HTTPS :443 on ADDR1 with a valid certificate for
 *   every name of the zone, answering "Hello from <host>. You came from
 *   <peer>." (and, for POST, the number of bytes received);
 * - HTTPS :443 on ADDR2 with an EXPIRED certificate;
 * - HTTP :8080 and HTTPS :8443 on ADDR1 (ports no proxy redirect touches);
 * - DNS :53 on ADDR1 for NAMES (name=addr, ...);
 * - with ADDR3 (a private address: an intranet server), HTTP :80 and HTTPS
 *   :443 with the valid certificate there too.
 *
 *   deno run -A web_origin.ts OUTDIR ADDR1 ADDR2 name=addr,... [ADDR3]
 *
 * Prints "ready" once everything listens.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { startDnsServer } from "../../../src/edge/dns.ts";
import { setListenerNoDelay } from "../../../src/net/tcp_nodelay.ts";

x509.cryptoProvider.set(crypto);
const [outDir, addr1, addr2, namesArg, addr3] = Deno.args;
const names = namesArg.split(",").map((p) => p.split("=") as [string, string]);
const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const pem = (label: string, der: ArrayBuffer) =>
  `-----BEGIN ${label}-----\n${
    btoa(String.fromCharCode(...new Uint8Array(der))).match(/.{1,64}/g)!.join("\n")
  }\n-----END ${label}-----\n`;
const day = 86400_000;
const caKeys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
const ca = await x509.X509CertificateGenerator.createSelfSigned({
  serialNumber: "01",
  name: "O=Lab Internet, CN=Lab Internet CA",
  notBefore: new Date(Date.now() - day),
  notAfter: new Date(Date.now() + 30 * day),
  signingAlgorithm: ALG,
  keys: caKeys,
  extensions: [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
  ],
});
async function leaf(serial: string, notBefore: number, notAfter: number) {
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${names[0][0]}`,
    issuer: ca.subject,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map(([n]) => ({ type: "dns" as const, value: n })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  return {
    cert: cert.toString("pem") + "\n" + ca.toString("pem") + "\n",
    key: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
  };
}
const good = await leaf("02", Date.now() - day, Date.now() + 20 * day);
const expired = await leaf("03", Date.now() - 20 * day, Date.now() - 2 * day);
await Deno.writeTextFile(`${outDir}/ca.crt`, ca.toString("pem") + "\n");

const handler = async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
  const host = new URL(req.url).hostname;
  const body = req.method === "POST" || req.method === "PUT"
    ? ` Received ${(await req.arrayBuffer()).byteLength} bytes.`
    : "";
  const size = Number(new URL(req.url).searchParams.get("size") ?? 0);
  if (size > 0) return new Response(new Uint8Array(Math.min(size, 64 * 1024 * 1024)));
  return new Response(`Hello from ${host}. You came from ${info.remoteAddr.hostname}.${body}\n`);
};
const quiet = { onListen() {} };
Deno.serve({ hostname: addr1, port: 80, ...quiet }, handler);
Deno.serve({ hostname: addr1, port: 443, ...quiet, ...good }, handler);
Deno.serve({ hostname: addr2, port: 443, ...quiet, ...expired }, handler);
if (addr3) {
  Deno.serve({ hostname: addr3, port: 80, ...quiet }, handler);
  Deno.serve({ hostname: addr3, port: 443, ...quiet, ...good }, handler);
}
// Ports the edge's redirect leaves alone: the plain NAT path for the benchmark.
Deno.serve({ hostname: addr1, port: 8080, ...quiet }, handler);
Deno.serve({ hostname: addr1, port: 8443, ...quiet, ...good }, handler);
// Like a real web server (nginx, Apache), no Nagle: over TLS Deno's server
// writes head and body apart, and every keep-alive response would wait 40 ms
// for the client's delayed ACK on both of the benchmark's paths alike.
for (const port of [80, 443, 8080, 8443]) setListenerNoDelay(port);
await startDnsServer({
  listen: { hostname: addr1, port: 53 },
  zones: ["example.test"],
  records: names.map(([name, address]) => ({
    name,
    type: "A" as const,
    class: 1,
    ttl: 60,
    address,
  })),
  lookup: () => null,
  upstream: [],
  allow: () => true,
});
console.log("ready");
