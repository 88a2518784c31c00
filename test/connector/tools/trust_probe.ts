/**
 * Run by trust_store_test.ts inside a private mount namespace whose
 * /etc/ssl/certs and /usr/local/share/ca-certificates are tmpfs copies, so
 * the real update-ca-certificates and certutil change nothing outside it.
 * Prints one JSON line of what curl and certutil saw at each step.
 */
import { InspectionCa } from "../../../src/proxy/inspection_ca.ts";
import { NSS_NICKNAME, SystemTrustStore } from "../../../src/connector/trust_store.ts";

const dir = Deno.args[0];
const ca = await InspectionCa.ephemeral();
const leaf = await ca.issue("127.0.0.1");
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, cert: leaf.cert, key: leaf.key, onListen() {} },
  () => new Response("inspected hello\n"),
);
const run = async (cmd: string[]) => {
  const o = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout) };
};
const curl = async () =>
  (await run(["curl", "-s", "--max-time", "5", `https://127.0.0.1:${server.addr.port}/`])).code;
const nss = `${dir}/nssdb`;
await Deno.mkdir(nss, { recursive: true });
await run(["certutil", "-N", "-d", `sql:${nss}`, "--empty-password"]);
const inNss = async () =>
  (await run(["certutil", "-L", "-d", `sql:${nss}`])).out.includes(NSS_NICKNAME);
const store = new SystemTrustStore({ dataDir: dir, nssDbs: [nss] });
const out: Record<string, unknown> = { before: await curl(), nssBefore: await inNss() };
await store.sync({ pem: ca.certPem, sha256: ca.sha256 });
out.installed = await curl();
out.nssInstalled = await inNss();
out.record = await store.installed();
await store.sync({ pem: ca.certPem, sha256: ca.sha256 });
out.again = (await store.installed())?.file === (out.record as { file: string }).file;
// Uninstall: the CLI takes out what the connector installed.
const main = new URL("../../../main.ts", import.meta.url).pathname;
out.cli =
  (await run([Deno.execPath(), "run", "-A", main, "trust", "remove", "--data-dir", dir])).out;
out.removed = await curl();
out.nssRemoved = await inNss();
out.recordAfter = await store.installed();
out.fileLeft = await Deno.stat((out.record as { file: string }).file).then(() => true, () => false);
await server.shutdown();
console.log(JSON.stringify(out));
