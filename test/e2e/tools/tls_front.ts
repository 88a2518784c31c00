/**
 * Test tool: a TLS front for a plain TCP service — terminates TLS on
 * host:port with the given certificate and pipes each connection to the
 * target (e.g. the oidc-provider IdP on loopback, served as https to other
 * namespaces). Prints "listening" once it accepts.
 *
 *   deno run -A tls_front.ts 192.0.2.1 9444 cert.pem key.pem 127.0.0.1:3000
 */
const [host, port, certFile, keyFile, target] = Deno.args;
const [thost, tport] = [target.slice(0, target.lastIndexOf(":")), Number(target.split(":").pop())];
const listener = Deno.listenTls({
  hostname: host,
  port: Number(port),
  cert: await Deno.readTextFile(certFile),
  key: await Deno.readTextFile(keyFile),
});
console.log("listening");
for await (const conn of listener) {
  (async () => {
    const up = await Deno.connect({ hostname: thost, port: tport });
    await Promise.allSettled([
      conn.readable.pipeTo(up.writable),
      up.readable.pipeTo(conn.writable),
    ]);
  })().catch(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  });
}
