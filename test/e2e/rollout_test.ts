/**
 * Connector updates end to end, in namespaces: a real edge and a real
 * connector run from an installed program file (a launcher of a Portcullis
 * tree; the "new version" is a copy of this tree whose VERSION is the next
 * minor). The operator's release key is made and releases are signed with
 * the `portcullis release` commands' code, uploaded through the admin API.
 *
 * - a release whose signature was tampered with is refused by the
 *   connector, reported to the edge (report and notification) and shown in
 *   its status; the program file is untouched, the process the same;
 * - a signed release whose program exits at once: installed, restarted
 *   into, and put back by the old process guarding it; the edge hears of
 *   the rollback and still sees the first version;
 * - a rule to the next version: the connector downloads and verifies it,
 *   swaps the program, restarts into it and the edge sees the new version
 *   (its report and the device's version); the old program is kept beside;
 * - a rollback rule to the first version whose authorisation's signature was
 *   tampered with (the edge cannot tell) is refused by the connector and
 *   reported to the edge; the program and the process stay;
 * - a rollback rule with the release key's authorisation (`portcullis
 *   release rollback`) brings the first version back, seen at the edge.
 *
 * Run under the lab lock (namespaces).
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import {
  adminCall,
  adminLogin,
  connectorAction,
  DENO,
  EDGE_IP,
  MAIN,
  startRoles,
} from "./roles.ts";
import { releaseCommand } from "../../src/fleet/release_cli.ts";
import { parseVersion, VERSION } from "../../src/version.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The next minor version after VERSION. */
function nextVersion(): string {
  const v = parseVersion(VERSION)!;
  return `${v.core[0]}.${(v.core[1] ?? 0) + 1}.0`;
}

/** A copy of this Portcullis tree that calls itself `version`. */
async function treeOf(dir: string, version: string): Promise<string> {
  const tree = `${dir}/tree-${version}`;
  await Deno.mkdir(tree, { recursive: true });
  for (const part of ["main.ts", "deno.json", "deno.lock", "src", "web", "ffi"]) {
    const r = await new Deno.Command("cp", { args: ["-r", `${ROOT}${part}`, `${tree}/`] }).output();
    if (r.code !== 0) throw new Error(`Cannot copy ${part}: ${new TextDecoder().decode(r.stderr)}`);
  }
  const path = `${tree}/src/version.ts`;
  const text = await Deno.readTextFile(path);
  const patched = text.replace(
    /export const VERSION = "[^"]+";/,
    `export const VERSION = "${version}";`,
  );
  assert.notEqual(patched, text);
  await Deno.writeTextFile(path, patched);
  return tree;
}

/** The launcher that is "the program" of a tree. */
const launcher = (main: string) => `#!/bin/sh\nexec ${DENO} run -A ${main} "$@"\n`;

Deno.test({
  name:
    "rollout: bad signature refused and reported, update to the next version, rollback rule back",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const started = Date.now();
    await using lab = new NetnsLab("upd");
    const work = await Deno.makeTempDir({ prefix: "pcupd" });
    lab.defer(() => Deno.remove(work, { recursive: true }));
    const next = nextVersion();
    const nextTree = await treeOf(work, next);
    const current = launcher(MAIN);
    const upgraded = launcher(`${nextTree}/main.ts`);
    await Deno.mkdir(`${work}/bin`);
    const program = `${work}/bin/portcullis`;
    await Deno.writeTextFile(program, current, { mode: 0o755 });

    // The operator's side: key pair, three bundles (one with its signature tampered with).
    const quiet = () => {};
    await releaseCommand(["keygen", "--out", `${work}/release.key`], quiet);
    const sign = async (version: string, text: string, out: string) => {
      await Deno.writeTextFile(`${work}/prog-${version}`, text);
      await releaseCommand([
        "sign",
        "--key",
        `${work}/release.key`,
        "--version",
        version,
        "--program",
        `${work}/prog-${version}`,
        "--out",
        out,
      ], quiet);
    };
    await sign(next, upgraded, `${work}/next.pcr`);
    await sign(VERSION, current, `${work}/current.pcr`);
    const badVersion = `${next.split(".")[0]}.${Number(next.split(".")[1]) + 1}.0`;
    await sign(badVersion, upgraded, `${work}/bad.pcr`);
    const brokenVersion = `${next.split(".")[0]}.${Number(next.split(".")[1]) + 2}.0`;
    await sign(brokenVersion, "#!/bin/sh\nexit 3\n", `${work}/broken.pcr`);
    // The release key holder's permission to go back from the next version to this one.
    await releaseCommand([
      "rollback",
      "--key",
      `${work}/release.key`,
      "--from",
      next,
      "--to",
      VERSION,
      "--expires",
      "1h",
      "--out",
      `${work}/back.json`,
    ], quiet);
    {
      // Tamper with the signature: the bytes and the manifest stay consistent, the key says no.
      const bytes = await Deno.readFile(`${work}/bad.pcr`);
      const text = new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(10, 11)));
      const at = text.indexOf('"signature":"') + 13;
      bytes[at] = bytes[at] === 65 ? 66 : 65;
      await Deno.writeFile(`${work}/bad.pcr`, bytes);
    }

    const r = await startRoles(lab, {
      enroll: true,
      connectorCommand: [program],
      connectorArgs: [
        "--release-key",
        `${work}/release.key.pub`,
        "--program",
        program,
        "--update-health-sec",
        "45",
      ],
    });
    try {
      const session = await adminLogin(r);
      const admin = (method: string, path: string, body?: unknown) =>
        adminCall(r, session, method, path, body) as Promise<any>;
      const upload = async (file: string) => {
        const res = await r.inNs(r.edgeNs, [
          "curl",
          "-s",
          "--cacert",
          r.ca,
          "-b",
          session.jar,
          "-H",
          `X-CSRF-Token: ${session.csrf}`,
          "-H",
          "Content-Type: application/octet-stream",
          "--data-binary",
          `@${file}`,
          `https://${EDGE_IP}:8443/api/v1/admin/updates/releases`,
        ]);
        const j = JSON.parse(res.stdout);
        assert.ok(j.release, res.stdout);
      };
      for (const f of ["next.pcr", "current.pcr", "bad.pcr", "broken.pcr"]) {
        await upload(`${work}/${f}`);
      }
      const deviceId = (await r.connectorStatus()).deviceId as string;
      const device = async () =>
        ((await admin("GET", "/api/v1/admin/devices")).devices as any[])
          .find((d) => d.id === deviceId);
      const report = async () =>
        ((await admin("GET", "/api/v1/admin/updates/overview")).reports as any[])
          .find((x) => x.deviceId === deviceId);
      const localUpdate = async () => {
        const res = await r.inNs(r.connNs, [
          "curl",
          "-s",
          "--max-time",
          "2",
          "http://127.0.0.1:9080/api/v1/update",
        ]);
        try {
          return JSON.parse(res.stdout);
        } catch {
          return null;
        }
      };
      assert.equal((await localUpdate()).version, VERSION);
      assert.equal((await device()).connectorVersion, VERSION);

      // ---- 1. A bad signature: refused, reported, nothing changes ----
      const rule = (await admin("POST", "/api/v1/admin/updates/rules", {
        name: "everyone",
        percent: 100,
        targetVersion: badVersion,
      })).rule;
      assert.ok(rule?.id, JSON.stringify(rule));
      const pid = (await r.connectorStatus()).pid;
      const refused = await connectorAction(r, "check-update") as any;
      assert.equal(refused.update.state, "refused", JSON.stringify(refused));
      assert.match(refused.update.message, /bad signature/);
      await waitUntil("the edge to hear of the refusal", async () => {
        const x = await report();
        return x?.outcome === "refused" && x.version === badVersion;
      }, 10_000);
      const notes = (await admin("GET", "/api/v1/admin/notifications?limit=50")) as any;
      const list = (notes.notifications ?? notes.items ?? []) as any[];
      assert.ok(
        list.some((n) => n.kind === "connector_update" && /bad signature/.test(n.message)),
        JSON.stringify(notes).slice(0, 500),
      );
      assert.equal(await Deno.readTextFile(program), current, "the program is untouched");
      assert.equal((await r.connectorStatus()).pid, pid);

      // ---- 2. A signed release that cannot start: the old process puts itself back ----
      await admin("PATCH", `/api/v1/admin/updates/rules/${rule.id}`, {
        targetVersion: brokenVersion,
      });
      await r.inNs(r.connNs, [
        "curl",
        "-s",
        "--max-time",
        "20",
        "-X",
        "POST",
        "-H",
        "X-Portcullis-Request: 1",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
        "http://127.0.0.1:9080/api/v1/actions/check-update",
      ]);
      await waitUntil("the edge to hear of the rollback", async () => {
        const x = await report();
        return x?.outcome === "rolled_back" && x.version === brokenVersion;
      }, 60_000);
      assert.match((await report()).reason, /exited \(code 3\) before reporting to the edge/);
      assert.equal((await device()).connectorVersion, VERSION);
      assert.equal(await Deno.readTextFile(program), current, "the previous program is back");
      await waitUntil("the tunnel after the rollback", async () => {
        const st = await r.connectorStatus().catch(() => null);
        return st?.state === "connected";
      }, 30_000);
      assert.equal((await localUpdate()).state, "rolled_back");

      // ---- 3. The next version: verified, swapped, restarted, seen at the edge ----
      await admin("PATCH", `/api/v1/admin/updates/rules/${rule.id}`, { targetVersion: next });
      // The process restarts during this call: its answer may be cut short.
      await r.inNs(r.connNs, [
        "curl",
        "-s",
        "--max-time",
        "20",
        "-X",
        "POST",
        "-H",
        "X-Portcullis-Request: 1",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
        "http://127.0.0.1:9080/api/v1/actions/update-policy",
      ]);
      await waitUntil(`the edge to see version ${next}`, async () => {
        const [d, x] = [await device(), await report()];
        return d?.connectorVersion === next && x?.outcome === "installed" && x.version === next;
      }, 60_000);
      const after = await localUpdate();
      assert.equal(after.version, next);
      assert.equal(after.state, "updated", JSON.stringify(after));
      assert.notEqual((await r.connectorStatus()).pid, pid, "a new process runs");
      assert.equal(await Deno.readTextFile(program), upgraded);
      assert.equal(await Deno.readTextFile(`${program}.previous`), current, "the old one is kept");
      await waitUntil("the tunnel to be up again", async () => {
        return (await r.connectorStatus()).state === "connected";
      }, 30_000);

      // ---- 4. A rollback the release key did not authorise: refused, reported ----
      // The edge cannot verify signatures (it holds no key), so an authorisation whose signature
      // was tampered with — what a taken-over edge could send — gets through it; not the connector.
      const forged = JSON.parse(await Deno.readTextFile(`${work}/back.json`));
      forged.signature = (forged.signature[0] === "A" ? "B" : "A") + forged.signature.slice(1);
      const patchedForged = await admin("PATCH", `/api/v1/admin/updates/rules/${rule.id}`, {
        targetVersion: VERSION,
        rollback: true,
        rollbackAuthorisation: JSON.stringify(forged),
      });
      assert.ok(patchedForged.rule?.rollback, JSON.stringify(patchedForged));
      const pidNext = (await r.connectorStatus()).pid;
      const unauthorised = await connectorAction(r, "check-update") as any;
      assert.equal(unauthorised.update.state, "refused", JSON.stringify(unauthorised));
      assert.match(unauthorised.update.message, /rollback authorisation is not signed/);
      await waitUntil("the edge to hear of the refused rollback", async () => {
        const x = await report();
        return x?.outcome === "refused" && x.version === VERSION &&
          /rollback authorisation is not signed by the pinned release key/.test(x.reason);
      }, 10_000);
      assert.equal((await device()).connectorVersion, next, "still on the newer version");
      assert.equal(await Deno.readTextFile(program), upgraded, "the program is untouched");
      assert.equal((await r.connectorStatus()).pid, pidNext, "no restart");

      // ---- 5. A rollback rule with the release key's authorisation: back to the first version ----
      const patchedBack = await admin("PATCH", `/api/v1/admin/updates/rules/${rule.id}`, {
        targetVersion: VERSION,
        rollback: true,
        rollbackAuthorisation: await Deno.readTextFile(`${work}/back.json`),
      });
      assert.ok(patchedBack.rule?.rollbackAuthorisation, JSON.stringify(patchedBack));
      await r.inNs(r.connNs, [
        "curl",
        "-s",
        "--max-time",
        "20",
        "-X",
        "POST",
        "-H",
        "X-Portcullis-Request: 1",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
        "http://127.0.0.1:9080/api/v1/actions/check-update",
      ]);
      await waitUntil(`the edge to see version ${VERSION} again`, async () => {
        const [d, x] = [await device(), await report()];
        return d?.connectorVersion === VERSION && x?.outcome === "installed" &&
          x.version === VERSION;
      }, 60_000);
      assert.equal((await localUpdate()).version, VERSION);
      assert.equal(await Deno.readTextFile(program), current);
      const audit = (await admin("GET", "/api/v1/admin/audit?limit=100")) as any;
      const actions = JSON.stringify(audit);
      for (const a of ["release.upload", "update.refused", "update.installed"]) {
        assert.ok(actions.includes(a), `${a} in the audit log`);
      }
      // The connector's own account: installed, restarted (a new pid), confirmed, twice.
      const log = await Deno.readTextFile(`${r.dir}/conn.log`);
      assert.equal(log.match(/Installed a new connector release; restarting/g)?.length, 3);
      assert.match(log, /putting the previous one back/);
      assert.equal(log.match(/Update confirmed by the edge/g)?.length, 2);
      assert.equal(log.match(/Refused a connector release/g)?.length, 2);
      console.log(`rollout e2e: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await r.logs()}`);
    }
  },
});
