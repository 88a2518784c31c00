/** Test-time CA and server certificates made with the openssl CLI. */

/** A CA and a server certificate for 127.0.0.1 signed by it. */
export interface TlsFixture {
  caPem: string;
  certPem: string;
  keyPem: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Makes a fresh CA ("name") and a 127.0.0.1/localhost server certificate in a temp dir. */
export async function makeCaAndServer(name: string): Promise<TlsFixture> {
  const dir = await Deno.makeTempDir({ prefix: "pc-tls-" });
  try {
    await openssl(dir, [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    await openssl(dir, [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "srv.key",
      "-out",
      "srv.csr",
      "-subj",
      "/CN=127.0.0.1",
    ]);
    await Deno.writeTextFile(
      `${dir}/ext.cnf`,
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      "srv.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "srv.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    ]);
    return {
      caPem: await Deno.readTextFile(`${dir}/ca.pem`),
      certPem: await Deno.readTextFile(`${dir}/srv.pem`),
      keyPem: await Deno.readTextFile(`${dir}/srv.key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
