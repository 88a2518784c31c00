/**
 * `portcullis uninstall` for real, in a network namespace of its own: the
 * connector's traces are laid out as a run leaves them — a TUN interface
 * with a route, the nftables table, a split-DNS resolv.conf with its backup,
 * a service unit and a trusted CA certificate under a temporary root, and a
 * data directory whose last policy sets an uninstall password. A wrong
 * password, and a missing confirmation, change nothing; the right one with
 * --yes removes all of it and leaves what is not ours (another CA
 * certificate, the original resolv.conf). Wrong passwords are rate-limited.
 */
import assert from "node:assert/strict";
import { ResolvConfManager } from "../../src/connector/dns/resolv_conf.ts";
import { SERVICE_UNIT, uninstallConnector } from "../../src/connector/uninstall.ts";
import { CONNECTOR_NFT_TABLE } from "../../src/connector/tunnel.ts";
import { hashPassword } from "../../src/identity/password.ts";
import { ConnectorState } from "../../src/store/connector_state.ts";
import { PolicyBundle } from "../../src/policy/types.ts";
import type { PortcullisError } from "../../src/errors.ts";
import { NetnsLab } from "./netns.ts";
import { DENO, MAIN } from "./roles.ts";

const ORIGINAL_RESOLV = "nameserver 192.0.2.53\nsearch corp.example\n";

function exists(p: string): boolean {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** A data directory and root as a connector run leaves them; returns their paths. */
async function traces(password: string | null) {
  const dir = await Deno.makeTempDir({ prefix: "pc-uninst-" });
  const data = `${dir}/data`, root = `${dir}/root`;
  await Deno.mkdir(data, { recursive: true });
  await Deno.mkdir(`${root}/etc/systemd/system`, { recursive: true });
  await Deno.mkdir(`${root}/usr/local/share/ca-certificates`, { recursive: true });
  await Deno.writeTextFile(`${root}/etc/systemd/system/${SERVICE_UNIT}`, "[Service]\n");
  await Deno.writeTextFile(`${root}/usr/local/share/ca-certificates/portcullis-edge.crt`, "ca\n");
  await Deno.writeTextFile(`${root}/usr/local/share/ca-certificates/corp-root.crt`, "other\n");
  await Deno.writeTextFile(`${root}/etc/resolv.conf`, ORIGINAL_RESOLV);
  await new ResolvConfManager({
    path: `${root}/etc/resolv.conf`,
    backupPath: `${data}/resolv.conf.backup`,
  }).apply("127.0.0.53");
  const store = ConnectorState.open(`${data}/connector.db`);
  const hash = password === null ? undefined : await hashPassword(password, {
    N: 1024,
    r: 8,
    p: 1,
  });
  store.putPolicy({
    version: "v1",
    etag: null,
    bundle: PolicyBundle.parse({
      version: "v1",
      generatedAt: new Date().toISOString(),
      appProfile: {
        name: "default",
        forwarding: { name: "fp" },
        passwords: hash ? { uninstall: hash } : {},
      },
    }),
    updatedAt: Date.now(),
  });
  store.close();
  return { dir, data, root };
}

Deno.test({
  name: "uninstall: a wrong password changes nothing; the right one removes every trace",
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("unin");
    const ns = await lab.ns("host");
    const t = await traces("remove-me-1");
    lab.defer(() => Deno.remove(t.dir, { recursive: true }).catch(() => {}));
    const sh = (cmd: string[], stdin?: string) => lab.exec(ns, cmd, { stdin, check: false });
    await sh(["ip", "tuntap", "add", "dev", "pcc0", "mode", "tun"]);
    await sh(["ip", "link", "set", "pcc0", "up"]);
    await sh(["ip", "route", "add", "198.51.100.0/24", "dev", "pcc0"]);
    await sh(
      ["nft", "-f", "-"],
      [
        `table inet ${CONNECTOR_NFT_TABLE} {`,
        " chain output { type filter hook output priority 0; policy accept; }",
        "}",
      ].join("\n"),
    );
    const uninstall = (extra: string[], stdin: string) =>
      sh([
        DENO,
        "run",
        "-A",
        MAIN,
        "uninstall",
        "--data-dir",
        t.data,
        "--root",
        t.root,
        "--tun-interface",
        "pcc0",
        ...extra,
      ], stdin);
    const everything = async () => ({
      unit: exists(`${t.root}/etc/systemd/system/${SERVICE_UNIT}`),
      ca: exists(`${t.root}/usr/local/share/ca-certificates/portcullis-edge.crt`),
      data: exists(`${t.data}/connector.db`),
      backup: exists(`${t.data}/resolv.conf.backup`),
      resolvOurs: (await Deno.readTextFile(`${t.root}/etc/resolv.conf`)).includes("portcullis"),
      tun: (await sh(["ip", "link", "show", "pcc0"])).code === 0,
      route: (await sh(["ip", "route", "show", "198.51.100.0/24"])).stdout.includes("pcc0"),
      nft: (await sh(["nft", "list", "table", "inet", CONNECTOR_NFT_TABLE])).code === 0,
    });
    const all = {
      unit: true,
      ca: true,
      data: true,
      backup: true,
      resolvOurs: true,
      tun: true,
      route: true,
      nft: true,
    };
    assert.deepEqual(await everything(), all, "the traces are in place");

    let r = await uninstall(["--yes"], "wrong-password\n");
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /Wrong uninstall password: nothing was removed/);
    assert.deepEqual(await everything(), all, "a wrong password changes nothing");

    r = await uninstall([], "remove-me-1\n");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /give --yes to uninstall from a script/);
    assert.match(r.stderr, /Uninstall not confirmed: nothing was removed/);
    assert.deepEqual(await everything(), all, "no confirmation changes nothing");

    r = await uninstall(["--yes"], "remove-me-1\n");
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Portcullis connector uninstalled/);
    assert.deepEqual(await everything(), {
      unit: false,
      ca: false,
      data: false,
      backup: false,
      resolvOurs: false,
      tun: false,
      route: false,
      nft: false,
    });
    assert.ok(!exists(t.data), "the data directory is gone");
    assert.equal(await Deno.readTextFile(`${t.root}/etc/resolv.conf`), ORIGINAL_RESOLV);
    assert.ok(exists(`${t.root}/usr/local/share/ca-certificates/corp-root.crt`), "not ours: kept");

    // Run again: nothing left to remove, still a clean exit.
    r = await uninstall(["--yes"], "");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Nothing of the Portcullis connector was found/);
  },
});

Deno.test("uninstall: wrong passwords are rate-limited before anything is touched", async () => {
  const t = await traces("remove-me-2");
  try {
    let now = Date.UTC(2026, 0, 1);
    const attempt = (password: string) =>
      uninstallConnector({
        dataDir: t.data,
        tunInterface: "pcc-none",
        consoleListen: "127.0.0.1:1",
        root: t.root,
        password: () => Promise.resolve(password),
        confirm: () => Promise.reject(new Error("must not be asked")),
        now: () => now,
      }).then(() => "removed", (e: PortcullisError) => `${e.code} ${e.status}`);
    for (let i = 0; i < 5; i++) assert.equal(await attempt("nope"), "wrong_password 403");
    assert.equal(await attempt("remove-me-2"), "too_many_attempts 429", "even the right one");
    now += 15 * 60_000;
    assert.equal(await attempt("nope"), "wrong_password 403", "the window passed");
    assert.ok(exists(`${t.data}/connector.db`));
    assert.ok(exists(`${t.root}/etc/systemd/system/${SERVICE_UNIT}`));
  } finally {
    await Deno.remove(t.dir, { recursive: true });
  }
});

Deno.test("uninstall: a connector still running by hand is left alone, nothing removed", async () => {
  const t = await traces(null);
  const running = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => Response.json({ state: "connected" }),
  );
  try {
    let asked = 0;
    const err = await uninstallConnector({
      dataDir: t.data,
      tunInterface: "pcc-none",
      consoleListen: `127.0.0.1:${running.addr.port}`,
      root: t.root,
      password: () => Promise.reject(new Error("no password is set")),
      confirm: () => Promise.resolve(++asked > 0),
    }).then(() => null, (e: PortcullisError) => e);
    assert.equal(err?.code, "connector_running");
    assert.match(err!.message, /portcullis ctl uninstall/);
    assert.equal(asked, 1);
    assert.ok(exists(`${t.root}/etc/systemd/system/${SERVICE_UNIT}`), "the unit stays");
    assert.ok(exists(`${t.root}/usr/local/share/ca-certificates/portcullis-edge.crt`));
    assert.ok(exists(`${t.data}/connector.db`));
  } finally {
    await running.shutdown();
    await Deno.remove(t.dir, { recursive: true });
  }
});
