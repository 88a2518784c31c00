/**
 * Endpoint DLP end to end, as a user would meet it. A real edge (control
 * plane and API over HTTPS with its own CA) holds a rule "block card numbers
 * on removable media". In a private mount namespace an ext4 image is
 * loop-mounted and flagged removable the way udev does it (its record in a
 * udev database says ID_BUS=usb); a connector runs there with fanotify.
 *
 * - `cp` of a LibreOffice DOCX with five card numbers to the medium: the
 *   file is taken off the medium into the connector's quarantine, the user
 *   is told in the connector console, and the edge has the incident with
 *   redacted samples;
 * - `cp` of a clean DOCX: it stays;
 * - the connector restarted report-only: the same copy stays, is reported
 *   as report_only, and the console says report-only and why;
 * - no raw card number, IBAN or SSN appears in the edge's or connector's
 *   logs, databases (the quarantine aside, which holds the file by design),
 *   the incident export or the connector's log bundle.
 *
 * Everything it creates (namespace holder, mount, loop device, processes,
 * files) is removed in `finally`, also when an assertion fails.
 */
import assert from "node:assert/strict";
import { unzipSync } from "fflate";
import { loadConfig } from "../../src/config.ts";
import { startEdgeControlPlane } from "../../src/edge/control_plane.ts";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { createEdgeApp } from "../../src/http/app_edge.ts";
import { randomToken, sha256Hex } from "../../src/identity/secrets.ts";
import { addLogSink, RingSink } from "../../src/log.ts";
import { documents, haveLibreOffice, SENSITIVE_TEXT } from "../dlp/documents.ts";
import { canUseNetns, sh, waitUntil } from "./netns.ts";

const tools = ["/usr/sbin/losetup", "/usr/sbin/mkfs.ext4", "/usr/bin/unshare", "/usr/bin/nsenter"];
const haveTools = tools.every((t) => {
  try {
    return Deno.statSync(t).isFile;
  } catch {
    return false;
  }
});

/** Raw values of the test documents in the forms they may be written. */
const RAW = [
  ...SENSITIVE_TEXT.matchAll(
    /\b(?:\d[\d ]{12,22}\d|[A-Z]{2}\d{2}(?: [A-Z0-9]{4}){3,7}(?: [A-Z0-9]{1,4})?|\d{3}-\d{2}-\d{4})\b/g,
  ),
]
  .map((m) => m[0]).flatMap((v) => [v, v.replace(/ /g, ""), v.replace(/-/g, "")]);

Deno.test({
  name:
    "endpoint DLP: a copy to a removable medium is quarantined and reported; a clean copy stays; report-only without fanotify",
  ignore: !canUseNetns || !haveTools || !haveLibreOffice(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assert.ok(RAW.includes("4111111111111111") && RAW.includes("123-45-6780") && RAW.length >= 16);
    const logs = new RingSink(20_000);
    addLogSink(logs);
    const root = await Deno.makeTempDir({ prefix: "pcl-dlp-e2e-" });
    const mnt = `${root}/usb`;
    const img = `${root}/usb.img`;
    const udev = `${root}/udev`;
    await Deno.mkdir(mnt);
    await Deno.mkdir(udev);
    let holder: Deno.ChildProcess | null = null;
    let agent: Deno.ChildProcess | null = null;
    let agentErr: Promise<string> | null = null;
    let server: Deno.HttpServer | null = null;
    let closeEdge: (() => void) | null = null;
    const ns = (
      ...cmd: string[]
    ) => ["/usr/bin/nsenter", "-t", String(holder!.pid), "-m", "--", ...cmd];
    try {
      // ---- The edge, its DLP policy and an admin token ----
      const config = await loadConfig("edge", {
        flags: { "data-dir": `${root}/edge`, "public-host": "127.0.0.1" },
      });
      const cp = await startEdgeControlPlane(config, {
        localPrefixes: () => [],
        scrypt: { N: 1024, r: 8, p: 1 },
      });
      closeEdge = () => cp.close();
      const app = createEdgeApp({ ctx: cp.ctx, scrypt: { N: 1024, r: 8, p: 1 } });
      server = Deno.serve(
        {
          hostname: "127.0.0.1",
          port: 0,
          cert: cp.ca.serverCertPem,
          key: cp.ca.serverKeyPem,
          onListen: () => {},
        },
        app.fetch,
      );
      const apiPort = (server.addr as Deno.NetAddr).port;
      const admin = cp.store.users.list().find((u) => u.role === "admin")!;
      const token = `pca_${randomToken(32)}`;
      cp.store.apiTokens.insert({
        id: "tok_e2e",
        tokenHash: sha256Hex(token),
        name: "e2e",
        userId: admin.id,
        createdAt: Date.now(),
        lastUsedAt: null,
      });
      const api = async (method: string, path: string, body?: unknown) => {
        const r = await app.request(path, {
          method,
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
        return await r.json();
      };
      await api("PUT", "/api/v1/admin/dlp/dictionaries/cards", { kind: "credit_card" });
      await api("PUT", "/api/v1/admin/dlp/rules", {
        items: [{
          name: "No cards on USB",
          channels: ["removable_media"],
          dictionaries: ["cards"],
          action: "block",
        }],
      });
      const { key } = createEnrollmentKey(cp.store, cp.ctx.clock, {
        reusable: true,
        expiresInMs: null,
        group: null,
        createdBy: "test",
        apiUrl: cp.ctx.apiUrl,
        caSha256: cp.ca.caSha256,
      });
      await Deno.writeTextFile(`${root}/ca.pem`, cp.ca.caCertPem);

      // ---- A private mount namespace with a loop-mounted ext4 "USB stick" ----
      await sh(["truncate", "-s", "64M", img]);
      await sh(["/usr/sbin/mkfs.ext4", "-q", "-F", img]);
      holder = new Deno.Command("/usr/bin/unshare", {
        args: ["--mount", "--propagation", "private", "--", "sleep", "3600"],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await waitUntil(
        "namespace holder",
        async () => {
          const self = await Deno.readLink("/proc/self/ns/mnt");
          return (await Deno.readLink(`/proc/${holder!.pid}/ns/mnt`)) !== self;
        },
        5000,
        20,
      );
      await sh(ns("mount", "-o", "loop", img, mnt));
      const loop = (await sh(["/usr/sbin/losetup", "-j", img])).stdout.split(":")[0].trim();
      const devNo = (await Deno.readTextFile(`/sys/block/${loop.replace("/dev/", "")}/dev`)).trim();
      // What udev records for a USB stick, in udev's database format.
      await Deno.writeTextFile(
        `${udev}/b${devNo}`,
        "E:ID_BUS=usb\nE:ID_USB_DRIVER=usb-storage\nE:ID_TYPE=disk\n",
      );

      // ---- The connector inside the namespace ----
      let consolePort = 0;
      const startAgent = async (mode: string) => {
        const cfgPath = `${root}/agent-${mode}.json`;
        await Deno.writeTextFile(
          cfgPath,
          JSON.stringify({
            dataDir: `${root}/connector`,
            key,
            caPemPath: `${root}/ca.pem`,
            apiPort,
            udevDataDir: udev,
            mode,
          }),
        );
        agent = new Deno.Command("/usr/bin/nsenter", {
          args: [
            "-t",
            String(holder!.pid),
            "-m",
            "--",
            Deno.execPath(),
            "run",
            "-A",
            "--no-prompt",
            new URL("./tools/dlp_connector.ts", import.meta.url).pathname,
            cfgPath,
          ],
          stdout: "piped",
          stderr: "piped",
          env: { PORTCULLIS_LOG_LEVEL: "debug", NO_COLOR: "1" },
        }).spawn();
        agentErr = new Response(agent.stderr).text();
        const reader = agent.stdout.pipeThrough(new TextDecoderStream()).getReader();
        const first = await reader.read();
        assert.match(first.value ?? "", /"ready":true/, "the connector started");
        consolePort = JSON.parse(first.value!.split("\n")[0]).consolePort;
        reader.releaseLock();
      };
      const local = (path: string, init?: RequestInit) =>
        fetch(`http://127.0.0.1:${consolePort}${path}`, init);
      const dlpStatus = async () => await (await local("/api/v1/dlp/status")).json();

      await startAgent("auto");
      await waitUntil("the connector watches the medium under the edge's rule", async () => {
        const s = await dlpStatus();
        return s.endpoint.mode === "enforcing" &&
          s.endpoint.mounts.some((m: { mountPoint: string; covered: boolean }) =>
            m.mountPoint === mnt && m.covered
          );
      }, 20_000);
      const status = await dlpStatus();
      const usb = status.endpoint.mounts.find((m: { mountPoint: string }) => m.mountPoint === mnt);
      assert.equal(usb.channel, "removable_media");
      assert.match(usb.reason, /ID_BUS=usb/);

      // ---- A copy with five card numbers: quarantined, reported ----
      const d = await documents();
      await sh(ns("cp", d.docx, `${mnt}/refunds.docx`));
      await waitUntil(
        "the sensitive copy is taken off the medium",
        async () =>
          (await sh(ns("test", "-e", `${mnt}/refunds.docx`), { check: false })).code !== 0,
        15_000,
      );
      await waitUntil(
        "the edge has the incident",
        () => Promise.resolve(cp.store.dlpIncidents.count() === 1),
        15_000,
      );
      const [inc] = (await api("GET", "/api/v1/admin/dlp/incidents")).incidents;
      assert.equal(inc.channel, "removable_media");
      assert.equal(inc.rule, "No cards on USB");
      assert.equal(inc.outcome, "quarantined");
      assert.equal(inc.fileName, `${mnt}/refunds.docx`);
      assert.equal(inc.hostname, "dlp-workstation");
      assert.equal(inc.fileSha256, sha256Hex(await Deno.readFile(d.docx)));
      assert.equal(inc.matches[0].count, 5);
      assert.deepEqual(inc.matches[0].samples, [
        "4111 **** **** 1111",
        "5555 **** **** 4444",
        "3782 **** *** 0005",
      ]);
      // The quarantine holds the file, readable only by the connector's user.
      const qdir = `${root}/connector/dlp-quarantine`;
      const q = [...Deno.readDirSync(qdir)].map((e) => e.name);
      const bin = q.find((n) => n.endsWith(".bin"))!;
      assert.ok(bin, "quarantined");
      assert.equal(Deno.statSync(`${qdir}/${bin}`).mode! & 0o777, 0o600);
      assert.equal(Deno.statSync(qdir).mode! & 0o777, 0o700);
      assert.deepEqual(await Deno.readFile(`${qdir}/${bin}`), await Deno.readFile(d.docx));
      // The user is told in the connector console.
      const notes = await (await local("/api/v1/notifications?type=dlp_blocked")).json();
      assert.match(
        notes.notifications[0].message,
        /Blocked copying refunds\.docx to the removable medium .*rule "No cards on USB" found 5 credit card numbers \(cards\)\. The file was moved to quarantine\./,
      );
      const page = await (await local("/data-protection")).text();
      assert.match(page, /Blocked copying refunds\.docx/);
      assert.match(page, /removable_media|Removable media/i);

      // ---- While a file is inspected, other opens wait, and are refused when it is blocked ----
      // 16 MB of text with one card number at the end: the scan takes a while,
      // and \`head\` opens the file right after \`cp\` closed it.
      const big = `${root}/ledger.txt`;
      await Deno.writeTextFile(
        big,
        "ledger line without numbers\n".repeat(580_000) + "card 4111 1111 1111 1111\n",
      );
      const held = await sh(
        ns("sh", "-c", `cp ${big} ${mnt}/ledger.txt && head -c 64 ${mnt}/ledger.txt`),
        { check: false },
      );
      assert.notEqual(held.code, 0, "the reader does not get the blocked file");
      assert.match(held.stderr, /Operation not permitted/);
      assert.equal(held.stdout, "", "not one byte of it");
      await waitUntil(
        "the big copy is quarantined",
        async () => (await sh(ns("test", "-e", `${mnt}/ledger.txt`), { check: false })).code !== 0,
        15_000,
      );
      await waitUntil(
        "and reported",
        () => Promise.resolve(cp.store.dlpIncidents.count() === 2),
        15_000,
      );

      // ---- Bad input to the DLP API is a 4xx with a code and a sentence, over HTTP/2 too ----
      const h2 = await sh([
        "curl",
        "-s",
        "--http2",
        "--cacert",
        `${root}/ca.pem`,
        "-X",
        "PUT",
        "-H",
        `authorization: Bearer ${token}`,
        "-H",
        "content-type: application/json",
        "--data",
        JSON.stringify({ kind: "regex", pattern: "(a)\\1" }),
        "-w",
        "\n%{http_version} %{http_code}",
        `https://127.0.0.1:${apiPort}/api/v1/admin/dlp/dictionaries/bad`,
      ]);
      const [h2body, h2status] = h2.stdout.split("\n");
      assert.equal(h2status, "2 400");
      assert.equal(JSON.parse(h2body).error.code, "invalid_pattern");

      // ---- A clean copy stays ----
      const inspected = (await dlpStatus()).endpoint.inspected;
      await sh(ns("cp", d.cleanDocx, `${mnt}/newsletter.docx`));
      await waitUntil(
        "the clean copy is inspected",
        async () => (await dlpStatus()).endpoint.inspected > inspected,
        15_000,
      );
      assert.equal(
        (await sh(ns("cmp", d.cleanDocx, `${mnt}/newsletter.docx`), { check: false })).code,
        0,
      );
      assert.equal(cp.store.dlpIncidents.count(), 2);

      // ---- Without fanotify: report-only, and the console says so ----
      agent!.kill("SIGTERM");
      await agent!.status;
      await startAgent("report_only");
      await waitUntil("report-only watches the medium", async () => {
        const s = await dlpStatus();
        return s.endpoint.mode === "report_only" &&
          s.endpoint.mounts.some((m: { covered: boolean }) => m.covered);
      }, 20_000);
      assert.match((await dlpStatus()).endpoint.reason, /report-only mode is configured/);
      await sh(ns("cp", d.docx, `${mnt}/again.docx`));
      await waitUntil(
        "the edge has the report-only incident",
        () => Promise.resolve(cp.store.dlpIncidents.count() === 3),
        20_000,
      );
      const again = (await api("GET", "/api/v1/admin/dlp/incidents")).incidents[0];
      assert.equal(again.outcome, "report_only");
      assert.equal(
        (await sh(ns("test", "-e", `${mnt}/again.docx`), { check: false })).code,
        0,
        "the file stays",
      );
      const rpage = await (await local("/data-protection")).text();
      assert.match(rpage, /report-only/i);

      // ---- No raw value in any log, database, incident or bundle ----
      const bundle = unzipSync(new Uint8Array(await (await local("/export.zip")).arrayBuffer()));
      const exportJson = await (await app.request("/api/v1/admin/dlp/incidents/export", {
        headers: { authorization: `Bearer ${token}` },
      })).text();
      agent!.kill("SIGTERM");
      await agent!.status;
      const haystacks: [string, string][] = [
        ["edge log", logs.records().map((r) => JSON.stringify(r)).join("\n")],
        ["connector log", await agentErr!],
        ["incident export", exportJson],
        ...Object.entries(bundle).map(([n, b]) =>
          [`connector bundle ${n}`, new TextDecoder().decode(b)] as [string, string]
        ),
      ];
      for (const dir of [`${root}/edge`, `${root}/connector`]) {
        for await (const e of Deno.readDir(dir)) {
          if (!e.isFile) continue;
          haystacks.push([
            `${dir}/${e.name}`,
            new TextDecoder("latin1").decode(await Deno.readFile(`${dir}/${e.name}`)),
          ]);
        }
      }
      assert.ok(haystacks.length >= 8);
      for (const [what, text] of haystacks) {
        for (const raw of RAW) {
          assert.ok(!text.includes(raw), `${what} holds the raw value ${raw.slice(0, 4)}…`);
        }
      }
    } catch (err) {
      // Say what the connector logged: the failure is usually explained there.
      if (agent) {
        try {
          (agent as Deno.ChildProcess).kill("SIGTERM");
        } catch { /* ended */ }
        const text: string = await (agentErr as Promise<string> | null ?? Promise.resolve(""));
        console.error(`connector log:\n${text.slice(-6000)}`);
      }
      throw err;
    } finally {
      if (agent) {
        try {
          (agent as Deno.ChildProcess).kill("SIGKILL");
        } catch { /* ended */ }
        await (agent as Deno.ChildProcess).status.catch(() => {});
      }
      if (holder) {
        await sh(ns("umount", "-l", mnt), { check: false });
        try {
          holder.kill("SIGKILL");
        } catch { /* ended */ }
        await holder.status.catch(() => {});
      }
      // The loop device is released with its last mount; detach it if anything still holds it.
      const left = (await sh(["/usr/sbin/losetup", "-j", img], { check: false })).stdout;
      for (const line of left.split("\n").filter(Boolean)) {
        await sh(["/usr/sbin/losetup", "-d", line.split(":")[0]], { check: false });
      }
      await server?.shutdown();
      closeEdge?.();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
