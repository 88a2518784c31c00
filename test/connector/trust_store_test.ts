/**
 * The inspection CA in the host's trust with the real tools: Debian's
 * update-ca-certificates (system bundle, read by curl) and NSS's certutil
 * (Chromium's database), in a private mount namespace with tmpfs copies of
 * the stores, so the machine's own trust is untouched. curl refuses a leaf
 * of the CA before, verifies it after install, refuses it again after
 * removal; the NSS database gains and loses the CA.
 */
import assert from "node:assert/strict";
import { privateTrustScript } from "../e2e/private_trust.ts";

const PROBE = new URL("./tools/trust_probe.ts", import.meta.url).pathname;
const canRun = Deno.build.os === "linux" && Deno.uid() === 0 && (() => {
  for (const f of ["/usr/sbin/update-ca-certificates", "/usr/bin/certutil", "/usr/bin/unshare"]) {
    try {
      Deno.statSync(f);
    } catch {
      return false;
    }
  }
  return true;
})();

Deno.test({
  name: "trust store: update-ca-certificates and NSS gain and lose the inspection CA",
  ignore: !canRun,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pctrust" });
    try {
      const script = privateTrustScript(`${dir}/copy`, [
        Deno.execPath(),
        "run",
        "-A",
        PROBE,
        dir,
      ]);
      const o = await new Deno.Command("unshare", {
        args: ["-m", "--propagation", "private", "sh", "-c", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(o.stdout);
      assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
      const r = JSON.parse(text.trim().split("\n").at(-1)!);
      assert.equal(r.before, 60, "curl refuses the leaf before the CA is trusted");
      assert.equal(r.nssBefore, false);
      assert.equal(r.installed, 0, "curl verifies the leaf against the system store after install");
      assert.equal(r.nssInstalled, true, "the NSS database holds the CA");
      assert.match(
        r.record.file,
        /^\/usr\/local\/share\/ca-certificates\/portcullis-inspection-[0-9a-f]{16}\.crt$/,
      );
      assert.equal(r.again, true, "a second sync installs nothing new");
      assert.match(r.cli, /^Removed the inspection CA [0-9a-f]{16}… \(\/usr\/local\/share/);
      assert.equal(
        r.removed,
        60,
        "removed by `portcullis trust remove`: curl refuses the leaf again",
      );
      assert.equal(r.nssRemoved, false);
      assert.equal(r.recordAfter, null);
      assert.equal(r.fileLeft, false);
      // Outside the namespace nothing changed.
      const bundle = await Deno.readTextFile("/etc/ssl/certs/ca-certificates.crt");
      assert.equal(bundle.includes(r.record.sha256), false);
      assert.equal(
        [...Deno.readDirSync("/usr/local/share/ca-certificates")].some((e) =>
          e.name.startsWith("portcullis-")
        ),
        false,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
