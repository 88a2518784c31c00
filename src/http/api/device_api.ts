/**
 * The device-facing API: enrolment, then (with the device credential and
 * fingerprint) policy fetch with ETag / long-poll / SSE, posture reports,
 * client-to-client registration, heartbeats and support requests.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { InputError } from "../../errors.ts";
import {
  authenticateDevice,
  checkSupportQuota,
  DEFAULT_SUPPORT_QUOTA,
  enrollDevice,
  pruneSupportBundles,
  type SupportQuota,
} from "../../edge/devices.ts";
import { compileHostnameRegex } from "../../edge/policy.ts";
import { judgeC2cName } from "../../edge/c2c.ts";
import { acceptPostureReport } from "../../edge/posture_reports.ts";
import { SignedPostureReport } from "../../posture/report.ts";
import { randomId, sha256Hex } from "../../identity/secrets.ts";
import type { PolicyBundle } from "../../policy/types.ts";
import type { DeviceRecord } from "../../store/mod.ts";
import { SupportForm } from "./admin_schemas.ts";
import { clientIp, iso, queryInt, readBodyLimited, readJson } from "./common.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";
import {
  C2cRegisterRequest,
  type C2cRegisterResponse,
  EnrollRequest,
  HeartbeatRequest,
  type PolicyResponse,
  ReauthRequest,
  ZdxReport,
} from "./schemas.ts";
import { ingestZdx } from "../../edge/zdx.ts";
import { renewDeviceSignIn } from "../../edge/signin_lapse.ts";
import type { ReauthResponse } from "../../control/mod.ts";
import { releasesDeviceApi } from "./releases_api.ts";
import { SSE_HEADERS, sseStream, StreamSlots } from "./sse.ts";
import { Pacer } from "./pacer.ts";

/** Largest support bundle accepted (10 MiB). */
export const SUPPORT_LIMIT = 10 * 1024 * 1024;

/** Longest long-poll wait (s). */
export const MAX_WAIT_SEC = 60;

function etagMatches(header: string | undefined, version: string): boolean {
  if (!header) return false;
  return header.split(",").some((t) => {
    const v = t.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
    return v === version || v === "*";
  });
}

/** Builds the device API sub-app (mounted at /api/v1). */
export function deviceApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const { ctx, metrics } = deps;
  const app = new Hono<EdgeEnv>();

  app.post("/enroll", async (c) => {
    try {
      const req = await readJson(c, EnrollRequest);
      const out = enrollDevice(ctx, req, clientIp(c));
      metrics.enrolment("ok");
      return c.json(out.response, 200);
    } catch (err) {
      metrics.enrolment(
        (err as { code?: string }).code ?? (err instanceof Error ? err.name : "error"),
      );
      throw err;
    }
  });

  // Applied per route (not with use("*")) so unknown paths still answer 404, not 401.
  const auth = createMiddleware<EdgeEnv>(async (c, next) => {
    const device = authenticateDevice(
      ctx,
      c.req.header("authorization"),
      c.req.header("x-device-fingerprint"),
    );
    c.set("device", device);
    await next();
  });

  // Connector updates: the release this device should run, its program, its report.
  app.route("/update", releasesDeviceApi(deps, auth));

  const supportQuota: SupportQuota = deps.supportQuota ?? DEFAULT_SUPPORT_QUOTA;

  // Open policy streams and long-polls per device.
  const streams = new StreamSlots();
  // A change wakes every stream and long-poll at once: they rebuild their
  // bundles a batch per event-loop turn, not all in one (pacer.ts).
  const pacer = new Pacer();

  const bundle = (d: DeviceRecord): PolicyBundle => ctx.policy.bundleForDevice(d.id);

  app.get("/policy", auth, async (c) => {
    const device = c.get("device");
    const wait = queryInt(c, "wait", 0, MAX_WAIT_SEC, 0);
    const inm = c.req.header("if-none-match");
    ctx.store.devices.touch(device.id, ctx.clock.now());
    let current = bundle(device);
    if (wait > 0 && etagMatches(inm, current.version)) {
      const done = new AbortController();
      // A fifth stream or long-poll of this device ends the oldest.
      const release = streams.acquire(device.id, () => done.abort());
      const onAbort = () => done.abort();
      c.req.raw.signal?.addEventListener("abort", onAbort, { once: true });
      const timer = setTimeout(() => done.abort(), wait * 1000);
      const sub = ctx.notifier.subscribe({
        kinds: ["policy_updated", "edge_health", "device_disabled", "device_deleted"],
        signal: done.signal,
      });
      // The fleet's healthy edges are in every bundle: a change answers the poll.
      const offFleet = ctx.fleet.onChange(() =>
        void pacer.turn().then(() => {
          if (!done.signal.aborted && !etagMatches(inm, bundle(device).version)) done.abort();
        })
      );
      try {
        for await (const n of sub) {
          if (isDeviceEvent(n.kind) && n.data.deviceId === device.id) break;
          await pacer.turn();
          if (done.signal.aborted) break;
          current = bundle(device);
          if (!etagMatches(inm, current.version)) break;
        }
      } finally {
        offFleet();
        clearTimeout(timer);
        sub.close();
        c.req.raw.signal?.removeEventListener("abort", onAbort);
        release();
      }
      // The device may have been disabled or deleted while we waited.
      authenticateDevice(ctx, c.req.header("authorization"), c.req.header("x-device-fingerprint"));
      current = bundle(device);
    }
    c.header("ETag", `"${current.version}"`);
    c.header("Cache-Control", "no-cache");
    if (etagMatches(inm, current.version)) return c.body(null, 304);
    return c.json({ policy: current, serverTime: iso(ctx.clock.now()) } as PolicyResponse, 200);
  });

  app.get("/policy/stream", auth, (c) => {
    const device = c.get("device");
    const credHash = sha256Hex(
      /^Bearer (.*)$/.exec(c.req.header("authorization") ?? "")?.[1] ?? "",
    );
    // The stream ends once the credential is rotated (re-enrolment), or the
    // device is disabled or deleted.
    const stillValid = () => {
      const d = ctx.store.devices.byCredentialHash(credHash);
      return !!d && d.id === device.id && !d.disabled;
    };
    const evicted = new AbortController();
    const release = streams.acquire(device.id, () => evicted.abort());
    const body = sseStream(deps.sseKeepaliveMs, async (w, signal) => {
      const sub = ctx.notifier.subscribe({
        kinds: ["policy_updated", "edge_health", "device_disabled", "device_deleted"],
        signal,
      });
      // One bundle per wake-up: a change wakes every stream at once.
      const send = (policy: PolicyBundle) => {
        last = policy.version;
        w.send("policy", { policy, serverTime: iso(ctx.clock.now()) } as PolicyResponse, last);
      };
      let last = "";
      send(bundle(device));
      const sendIfNew = async () => {
        await pacer.turn();
        if (signal.aborted) return;
        const b = bundle(device);
        if (b.version !== last) send(b);
      };
      // The fleet's healthy edges are in every bundle: a change is sent at once.
      const offFleet = ctx.fleet.onChange(() => void sendIfNew());
      try {
        for await (const n of sub) {
          if (isDeviceEvent(n.kind)) {
            if (n.data.deviceId === device.id) {
              w.sendFinal("revoked", { reason: n.kind, serverTime: iso(ctx.clock.now()) });
              break;
            }
            continue;
          }
          await sendIfNew();
        }
      } finally {
        offFleet();
      }
    }, { stillValid, onClose: release, signal: evicted.signal });
    return c.body(body, 200, SSE_HEADERS);
  });

  // This device's PAC file ("enforce PAC", and the local proxy mode's PAC
  // URL): its app profile's template with its variables, or the generated one.
  app.get("/pac", auth, (c) => {
    const device = c.get("device");
    const text = ctx.policy.pacForDevice(device.id);
    if (text === null) {
      throw new InputError(
        "pac_unavailable",
        "Cannot serve a PAC file: this edge runs no web proxy (--web-proxy-port)",
        409,
      );
    }
    const tag = sha256Hex(text);
    c.header("ETag", `"${tag}"`);
    c.header("Cache-Control", "no-cache");
    if (etagMatches(c.req.header("if-none-match"), tag)) return c.body(null, 304);
    return c.text(text, 200, { "content-type": "application/x-ns-proxy-autoconfig" });
  });

  app.post("/posture", auth, async (c) => {
    const report = await readJson(c, SignedPostureReport);
    const verdict = acceptPostureReport(ctx, c.get("device"), report);
    return c.json({ ...verdict, serverTime: iso(ctx.clock.now()) }, 200);
  });

  app.post("/zdx", auth, async (c) => {
    const device = c.get("device");
    const { results } = await readJson(c, ZdxReport, 256 * 1024);
    const scored = ingestZdx(ctx, device, results);
    ctx.store.devices.touch(device.id, ctx.clock.now());
    return c.json({ accepted: scored.length, scores: scored }, 200);
  });

  app.post("/c2c/register", auth, async (c) => {
    const device = c.get("device");
    const { fqdn: raw } = await readJson(c, C2cRegisterRequest);
    const settings = ctx.policy.clientToClient();
    const matcher = compileHostnameRegex(settings.hostnameRegex);
    const now = ctx.clock.now();
    // Judged inside the transaction, so two devices racing for one name cannot both win.
    const { fqdn, valid, reason } = ctx.store.transaction(() => {
      const j = judgeC2cName(ctx.store, settings, matcher, device.id, raw);
      ctx.store.c2c.upsert({ deviceId: device.id, ...j, registeredAt: now });
      ctx.store.devices.touch(device.id, now);
      return j;
    });
    ctx.c2cChanged.emit(device.id);
    const res: C2cRegisterResponse = { fqdn, valid, reason, serverTime: iso(now) };
    return c.json(res, 200);
  });

  // Re-authentication: the one call a device whose sign-in ended may make.
  app.post("/reauth", async (c) => {
    const device = authenticateDevice(
      ctx,
      c.req.header("authorization"),
      c.req.header("x-device-fingerprint"),
      { lapsed: "allow" },
    );
    const req = await readJson(c, ReauthRequest);
    const out = renewDeviceSignIn(ctx, device, req.signIn);
    const now = ctx.clock.now();
    ctx.store.devices.touch(device.id, now);
    const res: ReauthResponse = {
      user: out.user,
      signInEndsAt: iso(out.signInEndsAt),
      serverTime: iso(now),
    };
    return c.json(res, 200);
  });

  app.post("/heartbeat", auth, async (c) => {
    const device = c.get("device");
    const hb = await readJson(c, HeartbeatRequest);
    const now = ctx.clock.now();
    ctx.store.devices.touch(device.id, now, {
      state: hb.state,
      transport: hb.transport,
      clockSkewMs: hb.clockSkewMs ?? null,
      connectorVersion: hb.connectorVersion,
    });
    return c.json({ policyVersion: bundle(device).version, serverTime: iso(now) }, 200);
  });

  app.post("/support", auth, async (c) => {
    const device = c.get("device");
    // Refuse early, before reading a bundle that would be refused anyway.
    checkSupportQuota(ctx.store, device.id, ctx.clock.now(), supportQuota);
    const ct = (c.req.header("content-type") ?? "").toLowerCase();
    if (!ct.startsWith("multipart/form-data")) {
      throw new InputError(
        "unsupported_media_type",
        `Expected Content-Type "multipart/form-data", got "${ct.split(";")[0] || "none"}"`,
        415,
      );
    }
    const bytes = await readBodyLimited(c, SUPPORT_LIMIT + 64 * 1024);
    let form: FormData;
    try {
      form = await new Request("http://local/", {
        method: "POST",
        headers: { "content-type": c.req.header("content-type")! },
        body: bytes,
      }).formData();
    } catch {
      throw new InputError("malformed_form", "Request body is not valid multipart/form-data");
    }
    const fields = [...form.keys()].filter((k) => k !== "bundle" && k !== "message");
    if (fields.length) {
      throw new InputError(
        "invalid_request",
        `Invalid request: ${fields[0]}: unknown field "${fields[0]}"`,
      );
    }
    const { message } = SupportForm.parse({ message: form.get("message") ?? undefined });
    const file = form.get("bundle");
    if (!(file instanceof File)) {
      throw new InputError("invalid_request", "Invalid request: bundle: expected a zip file");
    }
    if (file.size > SUPPORT_LIMIT) {
      throw new InputError(
        "body_too_large",
        `Support bundle is larger than the limit of ${SUPPORT_LIMIT} bytes`,
        413,
      );
    }
    const zip = new Uint8Array(await file.arrayBuffer());
    const magic = zip.length >= 4 && zip[0] === 0x50 && zip[1] === 0x4b &&
      ((zip[2] === 3 && zip[3] === 4) || (zip[2] === 5 && zip[3] === 6));
    if (!magic) {
      throw new InputError("invalid_request", "Invalid request: bundle: expected a zip file");
    }
    const id = randomId("sup");
    const now = ctx.clock.now();
    ctx.store.transaction(() => {
      checkSupportQuota(ctx.store, device.id, now, supportQuota);
      ctx.store.support.insert({
        id,
        deviceId: device.id,
        hostname: device.hostname,
        message,
        bundleSha256: sha256Hex(zip),
        createdAt: now,
      }, zip);
      ctx.store.audit.insert({
        at: now,
        actor: `device:${device.id}`,
        action: "support.request",
        target: id,
        detail: { size: zip.length },
      });
      pruneSupportBundles(ctx.store, device.id, supportQuota.keep);
    });
    ctx.notifier.publish({
      kind: "support_request",
      requestId: id,
      deviceId: device.id,
      hostname: device.hostname,
    });
    return c.json({ id, serverTime: iso(now) }, 201);
  });

  return app;
}

/** Events about one device (the others change every device's bundle). */
function isDeviceEvent(kind: string): boolean {
  return kind === "device_disabled" || kind === "device_deleted";
}
