/**
 * Zero-trust private access in the lab (issue 11, the edge's half), as
 * steps of the lab test, observed at the private app server and at the
 * clients:
 * - a rule for machine group "engineering": the workstation reaches the
 *   app; the branch LAN host gets a TCP RST within 1 s; the decision log
 *   names the deciding rule for both;
 * - an FQDN segment (wiki.corp.internal): refused until a rule allows it,
 *   then reachable by name from the workstation only;
 * - client-to-client: a host-name pattern the workstation does not match
 *   keeps the gateway box out; once the name matches, it gets in;
 * - a pathological pattern (`^(a|aa)+$`, `^((a)+)+$`) with long host names
 *   delays neither an unrelated API request nor tunnel packets by 50 ms.
 * Each step leaves the policy as it found it (no segments, no rules,
 * client-to-client off).
 */
import assert from "node:assert/strict";
import { sh, waitUntil } from "./netns.ts";
import { ADDR, NS, WIKI_NAME } from "../../src/lab/topology.ts";
import { fingerprintHash } from "../../src/identity/secrets.ts";

/** Runs an admin API call inside pcl-edge and returns the parsed body. */
export type AdminApi = (path: string, method?: string, body?: unknown) => Promise<any>;

const inNs = (ns: string, cmd: string[]) =>
  sh(["ip", "netns", "exec", ns, ...cmd], { check: false });

/** curl's exit code and total time (s) for a GET, and the body. */
async function probe(ns: string, url: string, maxTime = 5) {
  const r = await inNs(ns, [
    "curl",
    "-s",
    "--max-time",
    String(maxTime),
    "-w",
    "\n%{exitcode} %{time_total}",
    url,
  ]);
  const lines = r.stdout.split("\n");
  const [code, time] = (lines.pop() ?? "").split(" ");
  return { code: Number(code), seconds: Number(time), body: lines.join("\n") };
}

const reached = async (ns: string, url: string) =>
  /Private app behind the edge/.test((await probe(ns, url, 2)).body);

/** Refused fast: curl's "Could not connect" (7), i.e. a RST, not a timeout. */
async function refusedFast(ns: string, url: string): Promise<number> {
  const p = await probe(ns, url, 5);
  assert.equal(
    p.code,
    7,
    `expected a refused connection from ${ns} to ${url}, got ${JSON.stringify(p)}`,
  );
  return p.seconds;
}

async function deviceId(api: AdminApi, hostname: string): Promise<string> {
  const { devices } = await api("/api/v1/admin/devices");
  const d = devices.find((x: { hostname: string }) => x.hostname === hostname);
  assert.ok(d, `device ${hostname} listed`);
  return d.id;
}

async function tunnelAddress(ns: string): Promise<string> {
  const out = (await inNs(ns, ["ip", "-4", "-o", "addr", "show", "pcc0"])).stdout;
  return out.match(/inet ([\d.]+)\//)![1];
}

async function clearPolicy(api: AdminApi): Promise<void> {
  await api("/api/v1/admin/policy/access-rules", "PUT", { items: [] });
  await api("/api/v1/admin/policy/segments", "PUT", { items: [] });
  await api("/api/v1/admin/policy/client-to-client", "PUT", { enabled: false });
}

/** Registers the lab's steps for private access. */
export async function accessSteps(
  t: Deno.TestContext,
  o: { dir: string; api: AdminApi; key: string },
): Promise<boolean> {
  const { api } = o;
  const app = `http://${ADDR.app}/`;
  let ok = true;
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!(await t.step(name, fn))) ok = false;
    await clearPolicy(api);
  };

  await step(
    "group rule: engineering reaches the app, the branch LAN host gets a RST within 1 s",
    async () => {
      await api("/api/v1/admin/policy/segments", "PUT", {
        items: [{
          name: "private-app",
          cidrs: [`${ADDR.app}/32`],
          ports: ["80"],
          protocols: ["tcp"],
        }],
      });
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [
          {
            name: "engineering app",
            ruleOrder: 1,
            segments: ["private-app"],
            machineGroups: ["engineering"],
          },
          { name: "others blocked", ruleOrder: 2, action: "deny", segments: ["private-app"] },
        ],
      });
      await waitUntil("the workstation to reach the app", () => reached(NS.ws, app), 10_000);
      await waitUntil(
        "the LAN host to be refused",
        async () => (await probe(NS.lan, app, 2)).code === 7,
        10_000,
      );
      const seconds = await refusedFast(NS.lan, app);
      assert.ok(seconds < 1, `RST after ${seconds} s`);
      const ws = await deviceId(api, "workstation"), gw = await deviceId(api, "branch-gw");
      await waitUntil("both decisions in the log", async () => {
        const a = (await api(`/api/v1/admin/decisions?device=${ws}&verdict=allow`)).decisions;
        const d = (await api(`/api/v1/admin/decisions?device=${gw}&verdict=deny`)).decisions;
        return a.some((x: { rule: string }) => x.rule === "engineering app") &&
          d.some((x: { rule: string; reason: string }) =>
            x.rule === "others blocked" && /denies device "branch-gw"/.test(x.reason)
          );
      }, 5_000);
    },
  );

  await step(
    "FQDN segment: wiki.corp.internal resolves through the edge and is reachable only under the rule",
    async () => {
      const url = `http://${WIKI_NAME}/`;
      await api("/api/v1/admin/policy/segments", "PUT", {
        items: [{ name: "wiki", domains: [WIKI_NAME], ports: ["80"] }],
      });
      // No rule yet: the edge resolved the name itself, so its address is private for everyone.
      await waitUntil(
        "the wiki to be refused without a rule",
        async () => (await probe(NS.ws, url, 2)).code === 7,
        10_000,
      );
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [{
          name: "wiki for engineering",
          segments: ["wiki"],
          machineGroups: ["engineering"],
        }],
      });
      await waitUntil(
        "the workstation to reach the wiki by name",
        () => reached(NS.ws, url),
        15_000,
      );
      const seconds = await refusedFast(NS.lan, url);
      assert.ok(seconds < 1, `RST after ${seconds} s`);
      const ws = await deviceId(api, "workstation");
      await waitUntil("the decision names the wiki", async () => {
        const d = (await api(`/api/v1/admin/decisions?device=${ws}&rule=wiki%20for%20engineering`))
          .decisions;
        return d.some((x: { name: string; segments: string[] }) =>
          x.name === WIKI_NAME && x.segments.includes("wiki")
        );
      }, 5_000);
    },
  );

  await step(
    "client-to-client: only to a device whose host name matches, only under a rule",
    async () => {
      const wsAddr = await tunnelAddress(NS.ws);
      const ping = async () =>
        (await inNs(NS.gw, ["ping", "-c", "1", "-W", "1", wsAddr])).code === 0;
      await api("/api/v1/admin/policy/segments", "PUT", {
        items: [{ name: "peers", domains: ["*.clients.portcullis.internal"] }],
      });
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [{ name: "branch to peers", segments: ["peers"], machineGroups: ["branch"] }],
      });
      await api("/api/v1/admin/policy/client-to-client", "PUT", {
        enabled: true,
        hostnameRegex: "^branch-gw\\.",
      });
      // The connector registers its name when it (re)connects.
      await inNs(NS.ws, [
        "curl",
        "-s",
        "-X",
        "POST",
        "http://127.0.0.1:9080/api/v1/actions/restart",
      ]);
      const ws = await deviceId(api, "workstation");
      await waitUntil("the workstation's name to be refused", async () => {
        const d = await api(`/api/v1/admin/devices/${ws}`);
        return d.clientToClient?.valid === false && /does not match/.test(d.clientToClient.reason);
      }, 20_000);
      assert.equal(await ping(), false, "the gateway box cannot reach the workstation");
      await api("/api/v1/admin/policy/client-to-client", "PUT", { enabled: true });
      await waitUntil(
        "the name to be valid under the new pattern",
        async () => (await api(`/api/v1/admin/devices/${ws}`)).clientToClient?.valid === true,
        5_000,
      );
      await waitUntil("the gateway box to reach the workstation", ping, 10_000);
      // And not the other way round: no rule lets engineering reach peers.
      const gwAddr = await tunnelAddress(NS.gw);
      assert.notEqual((await inNs(NS.ws, ["ping", "-c", "1", "-W", "1", gwAddr])).code, 0);
    },
  );

  await step(
    "a pathological host-name pattern delays neither the API nor the tunnel by 50 ms",
    async () => {
      const ca = `${o.dir}/edge/ca/ca.crt`;
      const base = `https://${ADDR.edge}:8443/api/v1`;
      const curlJson = (args: string[]) =>
        inNs(NS.ws, ["curl", "-s", "--cacert", ca, "-w", "\n%{time_total}", ...args]);
      // A throwaway device of our own, enrolled with the lab key, registers the names.
      const fingerprint = {
        machineId: crypto.randomUUID().replaceAll("-", ""),
        macs: ["02:00:00:00:00:aa"],
      };
      const key32 = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
      const enrol = await curlJson([
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({
          key: o.key,
          hostname: "stall-probe",
          os: "linux",
          osVersion: "test",
          connectorVersion: "0.1.0",
          fingerprint,
          wgPublicKey: key32(),
          signingPublicKey: key32(),
        }),
        `${base}/enroll`,
      ]);
      const cred = JSON.parse(enrol.stdout.split("\n")[0]).credential as string;
      assert.ok(cred, enrol.stdout);
      const register = (fqdn: string) =>
        curlJson([
          "-H",
          "Content-Type: application/json",
          "-H",
          `Authorization: Bearer ${cred}`,
          "-H",
          `X-Device-Fingerprint: ${fingerprintHash(fingerprint)}`,
          "-d",
          JSON.stringify({ fqdn }),
          `${base}/c2c/register`,
        ]);
      const health = async () =>
        Number((await curlJson([`${base}/health`])).stdout.split("\n").pop());
      const baseline = Math.max(await health(), await health(), await health());
      const long = [63, 63, 63, 61].map((n) => "a".repeat(n)).join(".");
      for (const pattern of ["^(a|aa)+$", "^((a)+)+$"]) {
        await api("/api/v1/admin/policy/client-to-client", "PUT", {
          enabled: true,
          hostnameRegex: pattern,
        });
        // Pings through the tunnel every 10 ms while the names are judged.
        const pinging = inNs(NS.ws, [
          "ping",
          "-q",
          "-c",
          "150",
          "-i",
          "0.01",
          "-W",
          "1",
          "100.64.0.1",
        ]);
        const results = await Promise.all([
          register(long),
          register(`${"a".repeat(62)}b.${long.slice(64)}`),
          health(),
          register(long),
          health(),
        ]);
        const p = await pinging;
        for (const r of [results[0], results[1], results[3]]) {
          const [body, time] = r.stdout.split("\n");
          assert.equal(JSON.parse(body).valid, false, body);
          assert.ok(Number(time) < 1, `registration took ${time} s`);
        }
        for (const h of [results[2], results[4]] as number[]) {
          assert.ok(
            h - baseline < 0.05,
            `${pattern}: an API request took ${h} s (baseline ${baseline} s)`,
          );
        }
        const m = p.stdout.match(/= [\d.]+\/[\d.]+\/([\d.]+)\//);
        assert.ok(m, p.stdout);
        assert.ok(Number(m[1]) < 50, `${pattern}: a tunnel packet waited ${m[1]} ms`);
        assert.match(p.stdout, / 0% packet loss/);
      }
      const id = await deviceId(api, "stall-probe");
      await api(`/api/v1/admin/devices/${id}`, "DELETE");
    },
  );
  return ok;
}
