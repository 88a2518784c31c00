/** The edge CA and server certificate made with openssl. */
import assert from "node:assert/strict";
import { certSha256, ensureCa, serverSans } from "../../src/edge/ca.ts";

async function openssl(args: string[], stdin?: string): Promise<string> {
  const p = new Deno.Command("openssl", {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await p.output();
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

Deno.test("ca: made once, keys 0600, server cert verifies with the SANs, pin is the DER SHA-256", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await ensureCa(`${dir}/ca`, { hostnames: ["edge.example"], ips: ["192.0.2.10"] });
    assert.equal((await Deno.stat(ca.caKeyPath)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(ca.serverKeyPath)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/ca`)).mode! & 0o777, 0o700);
    const verify = await openssl(["verify", "-CAfile", ca.caCertPath, ca.serverCertPath]);
    assert.match(verify, /OK/);
    const text = await openssl([
      "x509",
      "-in",
      ca.serverCertPath,
      "-noout",
      "-ext",
      "subjectAltName",
    ]);
    for (
      const want of [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "DNS:edge.example",
        "IP Address:192.0.2.10",
      ]
    ) {
      assert.ok(text.includes(want), `${want} in ${text}`);
    }
    const fp = await openssl(["x509", "-in", ca.caCertPath, "-noout", "-fingerprint", "-sha256"]);
    assert.equal(ca.caSha256, fp.split("=")[1].trim().replaceAll(":", "").toLowerCase());
    assert.equal(certSha256(ca.caCertPem), ca.caSha256);

    const again = await ensureCa(`${dir}/ca`, { hostnames: ["edge.example"], ips: ["192.0.2.10"] });
    assert.equal(again.caSha256, ca.caSha256);
    assert.equal(again.serverCertPem, ca.serverCertPem, "unchanged names keep the certificate");
    const renamed = await ensureCa(`${dir}/ca`, { hostnames: ["other.example"] });
    assert.equal(renamed.caSha256, ca.caSha256, "same CA");
    assert.notEqual(renamed.serverCertPem, ca.serverCertPem, "new names, new certificate");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ca: names that could inject into the openssl config are refused", () => {
  assert.throws(() => serverSans({ hostnames: ["a.example,DNS:evil.com"] }), /Cannot put hostname/);
  assert.throws(
    () => serverSans({ ips: ["1.2.3.4\nbasicConstraints=CA:TRUE"] }),
    /Cannot put address/,
  );
  assert.deepEqual(serverSans({ ips: ["::1"] }), ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]);
});
