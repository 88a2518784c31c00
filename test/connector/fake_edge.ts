/**
 * A small edge written against the wire contract (src/http/api/schemas.ts)
 * for connector tests: enrolment, policy with ETag, the SSE policy stream,
 * heartbeat, posture, c2c and support. It validates requests with the same
 * zod schemas as the real edge, so a connector that drifts from the
 * contract fails here.
 */
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import {
  C2cRegisterRequest,
  EnrollRequest,
  HeartbeatRequest,
  PostureReport,
} from "../../src/http/api/schemas.ts";
import { PolicyBundle } from "../../src/policy/types.ts";
import { toBase64Url } from "../../src/connector/identity.ts";

/** Makes a policy bundle with defaults and the given app-profile fields. */
export function makeBundle(version: string, app: Record<string, unknown> = {}): PolicyBundle {
  return PolicyBundle.parse({
    version,
    generatedAt: new Date().toISOString(),
    appProfile: { name: "default", forwarding: { name: "fp" }, ...app },
  });
}

/** Builds an enrolment key string. */
export function makeKey(payload: Record<string, unknown>): string {
  return "pc1." + toBase64Url(new TextEncoder().encode(JSON.stringify(payload)));
}

/** State and handles of the fake edge. */
export class FakeEdge {
  readonly app = new Hono();
  secret = "s".repeat(24);
  caPem = "";
  policy: PolicyBundle = makeBundle("v1");
  enrollments: EnrollRequest[] = [];
  heartbeats: HeartbeatRequest[] = [];
  postures: PostureReport[] = [];
  supports: { message: string; size: number }[] = [];
  devices = new Map<string, { credential: string; fp: string; wgPublicKey: string }>();
  serverTimeOffsetMs = 0;
  /** Answer every request with 503. */
  down = false;
  /** Refuse connections (in-process fetch rejects as a closed port would). */
  refuse = false;
  /** Requests refused while `refuse` was set. */
  refused = 0;
  #streams = new Set<(v: string) => void>();

  constructor() {
    const app = this.app;
    app.use("*", async (c, next) => {
      if (this.down) return c.json({ error: { code: "down", message: "Down." } }, 503);
      await next();
      c.header("X-Server-Time", new Date(Date.now() + this.serverTimeOffsetMs).toISOString());
    });
    app.get("/ca.pem", (c) => c.text(this.caPem));
    app.post("/api/v1/enroll", async (c) => {
      const r = EnrollRequest.safeParse(await c.req.json().catch(() => null));
      if (!r.success) {
        return c.json({ error: { code: "invalid_request", message: r.error.message } }, 400);
      }
      if (r.data.key !== this.secret) {
        return c.json({
          error: { code: "invalid_key", message: "The enrolment key is not valid." },
        }, 401);
      }
      this.enrollments.push(r.data);
      const n = this.enrollments.length;
      const deviceId = `dev-${n}`;
      const credential = `cred-${n}-${crypto.randomUUID()}`;
      const fp = r.data.fingerprint;
      const fpHash = await sha256(
        JSON.stringify({ machineId: fp.machineId, macs: [...fp.macs].sort() }),
      );
      this.devices.set(credential, { credential, fp: fpHash, wgPublicKey: r.data.wgPublicKey });
      return c.json({
        deviceId,
        credential,
        address: `100.64.0.${n + 1}`,
        network: "100.64.0.0/16",
        edgeAddress: "100.64.0.1",
        edgePublicKey: "E".repeat(43) + "=",
        endpoints: [{ transport: "udp", host: "127.0.0.1", port: 51820 }, {
          transport: "tls",
          host: "127.0.0.1",
          port: 8443,
        }],
        policy: this.policy,
        user: null,
        group: "staff",
        serverTime: new Date().toISOString(),
      });
    });
    const auth = (c: { req: { header(n: string): string | undefined } }) => {
      const cred = (c.req.header("authorization") ?? "").replace(/^Bearer /, "");
      const d = this.devices.get(cred);
      return d && d.fp === c.req.header("x-device-fingerprint") ? d : null;
    };
    const unauthorized = { error: { code: "unauthorized", message: "Device credential refused." } };
    app.get("/api/v1/policy", (c) => {
      if (!auth(c)) return c.json(unauthorized, 401);
      const etag = `"${this.policy.version}"`;
      if (c.req.header("if-none-match") === etag) return c.body(null, 304);
      c.header("ETag", etag);
      return c.json({ policy: this.policy, serverTime: new Date().toISOString() });
    });
    app.get("/api/v1/policy/stream", (c) => {
      if (!auth(c)) return c.json(unauthorized, 401);
      return streamSSE(c, async (s) => {
        let wake: (() => void) | null = null;
        const queue: string[] = [this.policy.version];
        const push = (v: string) => {
          queue.push(v);
          wake?.();
        };
        this.#streams.add(push);
        s.onAbort(() => {
          this.#streams.delete(push);
          wake?.();
        });
        try {
          while (!s.aborted && !this.down) {
            while (queue.length) {
              // The real edge's frame: the whole PolicyResponse, id = version.
              const version = queue.shift()!;
              await s.writeSSE({
                event: "policy",
                id: version,
                data: JSON.stringify({ policy: this.policy, serverTime: new Date().toISOString() }),
              });
            }
            await new Promise<void>((r) => {
              wake = r;
              setTimeout(r, 200);
            });
          }
        } finally {
          this.#streams.delete(push);
        }
      });
    });
    app.post("/api/v1/heartbeat", async (c) => {
      if (!auth(c)) return c.json(unauthorized, 401);
      const r = HeartbeatRequest.safeParse(await c.req.json().catch(() => null));
      if (!r.success) {
        return c.json({ error: { code: "invalid_request", message: r.error.message } }, 400);
      }
      this.heartbeats.push(r.data);
      return c.json({ ok: true, serverTime: new Date().toISOString() });
    });
    app.post("/api/v1/posture", async (c) => {
      if (!auth(c)) return c.json(unauthorized, 401);
      const r = PostureReport.safeParse(await c.req.json().catch(() => null));
      if (!r.success) {
        return c.json({ error: { code: "invalid_request", message: r.error.message } }, 400);
      }
      this.postures.push(r.data);
      return c.json({ passed: true, profiles: [], serverTime: new Date().toISOString() });
    });
    app.post("/api/v1/c2c/register", async (c) => {
      if (!auth(c)) return c.json(unauthorized, 401);
      const r = C2cRegisterRequest.safeParse(await c.req.json().catch(() => null));
      if (!r.success) {
        return c.json({ error: { code: "invalid_request", message: r.error.message } }, 400);
      }
      const valid = new RegExp(this.policy.clientToClient.hostnameRegex).test(r.data.fqdn);
      return c.json({
        fqdn: r.data.fqdn,
        valid,
        reason: valid ? "matches" : "does not match the hostname pattern",
        serverTime: new Date().toISOString(),
      });
    });
    app.post("/api/v1/support", async (c) => {
      if (!auth(c)) return c.json(unauthorized, 401);
      const form = await c.req.formData();
      const bundle = form.get("bundle");
      if (typeof form.get("message") !== "string" || !(bundle instanceof File)) {
        return c.json(
          { error: { code: "invalid_request", message: "Need message and bundle." } },
          400,
        );
      }
      this.supports.push({ message: String(form.get("message")), size: bundle.size });
      return c.json({ id: "sup-1" });
    });
  }

  /** Replaces the policy and announces the new version on every open stream. */
  setPolicy(p: PolicyBundle): void {
    this.policy = p;
    for (const push of this.#streams) push(p.version);
  }

  /** Number of open policy streams. */
  get streams(): number {
    return this.#streams.size;
  }

  /** In-process transport for EdgeClient. */
  readonly fetch = (req: Request): Promise<Response> => {
    if (!this.refuse) return Promise.resolve(this.app.fetch(req));
    this.refused++;
    return Promise.reject(new TypeError("error sending request: connection refused"));
  };
}

async function sha256(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}
