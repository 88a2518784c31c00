/**
 * The connector's local API, served by main.ts on 127.0.0.1 (default port
 * 9080): status, notifications (list and live stream) and user actions.
 *
 * Any web page the user visits can make their browser send requests to
 * 127.0.0.1, so: the Host header must name loopback (defeats DNS rebinding),
 * and state-changing POSTs need either the custom header
 * `X-Portcullis-Request: 1` (a page cannot add it cross-origin without a CORS
 * preflight, which we never grant) or an Origin equal to our own. Actions a
 * policy guards with a password (disable, logout, exit) check it against the
 * policy's scrypt hash in constant time, with a small failure budget.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import type { ProtectedAction } from "../policy/types.ts";
import { verifyPassword } from "../identity/password.ts";
import type { EngineEvent, TransitionResult } from "../connector/engine_state.ts";
import type { EngineStatus, PolicyUpdateOutcome } from "../connector/engine/mod.ts";
import type { NotificationHub } from "../connector/notifications.ts";
import type { ConnectorState } from "../store/connector_state.ts";
import { PortcullisError } from "../errors.ts";
import { readBodyLimited } from "./api/common.ts";
import type { DoctorReport } from "../diag/doctor/mod.ts";

/** The part of the engine the local API drives. */
export interface ConnectorEngineApi {
  status(): EngineStatus;
  dispatch(event: EngineEvent): Promise<TransitionResult>;
  updatePolicy(): Promise<PolicyUpdateOutcome>;
  passwordHashFor(action: ProtectedAction): string | undefined;
  enrollWithKey(key: string): Promise<TransitionResult>;
}

/** Dependencies of the local API app. */
export interface ConnectorAppDeps {
  engine: ConnectorEngineApi;
  hub: NotificationHub;
  store: ConnectorState;
  /**
   * Restarts the connector's process (src/connector/restart.ts); absent →
   * "restart" restarts the engine in place (tests, embedded use).
   */
  onRestart?: () => void;
  /** Called after a successful exit action (main.ts stops the process); absent → exit unsupported. */
  onExit?: () => void;
  /**
   * Called after a successful uninstall action (the connector stops, then
   * removes itself: src/connector/uninstall.ts); absent → uninstall unsupported here.
   */
  onUninstall?: () => void;
  /** "Repair app" (src/connector/repair.ts); absent → the repair action is not available. */
  repair?: { run(): Promise<unknown> } | null;
  /** Digital-experience scores and history (GET /api/v1/zdx); absent → 404. */
  zdx?: { status(): unknown };
  /** Runs the doctor (GET /api/v1/diagnose); absent → 404. */
  diagnose?: () => Promise<DoctorReport>;
  /** Connector updates: status and a check now (absent: GET /api/v1/update is 404). */
  updates?: { status(): unknown; check(): Promise<unknown> };
  /** Wall clock for the failure budget (tests). */
  now?: () => number;
  /** Wrong passwords allowed per minute before 429 (default 5). */
  passwordFailuresPerMinute?: number;
  /** Endpoint DLP: its status and an immediate policy fetch (absent: DLP is off). */
  dlp?: {
    status(): unknown;
    refresh(): Promise<void>;
    inspectPrint(
      job: Uint8Array,
      meta: { jobId: string; user: string; title: string },
    ): Promise<{ action: string; rule: string | null; reason: string }>;
  } | null;
}

/** Largest print job the DLP hook inspects (64 MiB). */
export const PRINT_LIMIT = 64 * 1024 * 1024;

/** The custom header that marks a request as coming from our console or CLI. */
export const LOCAL_REQUEST_HEADER = "X-Portcullis-Request";

const ActionBody = z.object({
  password: z.string().max(1024).optional(),
  /** For "enroll": the enrolment key (pc1.…). */
  key: z.string().max(2048).optional(),
}).strict();
const NotificationQuery = z.object({
  type: z.string().regex(/^[a-z0-9_]{1,64}$/).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
}).strict();

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

function hostOnly(host: string): string {
  const m = host.toLowerCase().match(/^(\[[0-9a-f:.]+\]|[^:]+)(?::\d{1,5})?$/);
  return m ? m[1] : "";
}

function err(c: Context, status: number, code: string, message: string) {
  return c.json({ error: { code, message } }, status as 400);
}

/** Builds the local API app (do not serve it here; main.ts does). */
export function createConnectorApp(deps: ConnectorAppDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? Date.now;
  const budget = deps.passwordFailuresPerMinute ?? 5;
  let failures: number[] = [];
  let checking = false;

  app.onError((e, c) => {
    if (e instanceof PortcullisError && e.status < 500) return err(c, e.status, e.code, e.message);
    return err(c, 500, "internal_error", "The connector could not complete the request.");
  });
  app.notFound((c) => err(c, 404, "not_found", `No such endpoint: ${c.req.method} ${c.req.path}`));

  app.use("*", async (c, next) => {
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    if (!LOOPBACK_HOSTS.has(hostOnly(host))) {
      return err(
        c,
        403,
        "bad_host",
        `Refusing request for host "${
          host.slice(0, 100)
        }": the local API answers only to 127.0.0.1 or localhost`,
      );
    }
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const origin = c.req.header("origin");
      const marked = c.req.header(LOCAL_REQUEST_HEADER) === "1";
      if (origin !== undefined && origin !== "null") {
        let same = false;
        try {
          const o = new URL(origin);
          same = o.host.toLowerCase() === host.toLowerCase() &&
            LOOPBACK_HOSTS.has(hostOnly(o.host));
        } catch {
          same = false;
        }
        if (!same) {
          return err(
            c,
            403,
            "cross_origin",
            `Refusing a request from origin "${origin.slice(0, 100)}"`,
          );
        }
      } else if (!marked) {
        return err(
          c,
          403,
          "csrf",
          `Refusing a state-changing request without the ${LOCAL_REQUEST_HEADER} header or a same-origin Origin`,
        );
      }
    }
    await next();
    c.header("X-Server-Time", new Date(now()).toISOString());
    c.header("Cache-Control", "no-store");
  });

  // The pid tells a console waiting out a restart when the new process answers.
  app.get("/api/v1/status", (c) => c.json({ ...deps.engine.status(), pid: Deno.pid }));

  app.get("/api/v1/update", (c) => {
    if (!deps.updates) return err(c, 404, "not_supported", "Updates are not available here");
    return c.json(deps.updates.status());
  });

  app.get("/api/v1/zdx", (c) => {
    if (!deps.zdx) return err(c, 404, "not_supported", "Digital experience is not available here");
    return c.json(deps.zdx.status());
  });

  // One doctor run at a time: callers arriving meanwhile share its report.
  let diagnosing: Promise<DoctorReport> | null = null;
  app.get("/api/v1/diagnose", async (c) => {
    if (!deps.diagnose) {
      return err(c, 404, "not_supported", "The doctor is not available on this listener");
    }
    diagnosing ??= deps.diagnose().finally(() => (diagnosing = null));
    return c.json(await diagnosing);
  });

  app.get("/api/v1/dlp/status", (c) => {
    if (!deps.dlp) {
      return err(c, 404, "dlp_off", "Endpoint DLP is off on this connector (dlpMode off)");
    }
    return c.json(deps.dlp.status());
  });
  // The CUPS backend (src/dlp/endpoint/cups_backend.ts) asks here about each print job.
  app.post("/api/v1/dlp/print", async (c) => {
    if (!deps.dlp) {
      return err(c, 404, "dlp_off", "Endpoint DLP is off on this connector (dlpMode off)");
    }
    const job = new Uint8Array(await c.req.arrayBuffer());
    if (job.length > PRINT_LIMIT) {
      return err(
        c,
        413,
        "body_too_large",
        `Print job is larger than the limit of ${PRINT_LIMIT} bytes`,
      );
    }
    const text = (h: string) => (c.req.header(h) ?? "").replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
    return c.json(
      await deps.dlp.inspectPrint(job, {
        jobId: text("x-print-job") || "?",
        user: text("x-print-user"),
        title: text("x-print-title") || "untitled",
      }),
    );
  });
  app.post("/api/v1/dlp/refresh", async (c) => {
    if (!deps.dlp) {
      return err(c, 404, "dlp_off", "Endpoint DLP is off on this connector (dlpMode off)");
    }
    await deps.dlp.refresh();
    return c.json({ ok: true, status: deps.dlp.status() });
  });

  app.get("/api/v1/notifications", (c) => {
    const q = NotificationQuery.safeParse(c.req.query());
    if (!q.success) {
      return err(c, 400, "invalid_query", `Invalid query: ${q.error.issues[0].message}`);
    }
    if ((c.req.header("accept") ?? "").includes("text/event-stream")) return stream(c, q.data.type);
    return c.json({
      notifications: deps.store.listNotifications({
        type: q.data.type,
        afterId: q.data.after,
        limit: q.data.limit,
      }),
    });
  });

  app.get("/api/v1/notifications/stream", (c) => {
    const q = NotificationQuery.safeParse(c.req.query());
    if (!q.success) {
      return err(c, 400, "invalid_query", `Invalid query: ${q.error.issues[0].message}`);
    }
    return stream(c, q.data.type);
  });

  function stream(c: Context, type: string | undefined) {
    return streamSSE(c, async (s) => {
      const ac = new AbortController();
      s.onAbort(() => ac.abort());
      for await (const n of deps.hub.subscribe(ac.signal, type)) {
        await s.writeSSE({ id: String(n.id), event: n.type, data: JSON.stringify(n) });
      }
    });
  }

  async function body(c: Context): Promise<z.infer<typeof ActionBody>> {
    const text = new TextDecoder().decode(await readBodyLimited(c, 4096));
    if (!text.trim()) return {};
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new PortcullisError("invalid_json", "Request body is not valid JSON", 400);
    }
    const r = ActionBody.safeParse(json);
    if (!r.success) {
      throw new PortcullisError(
        "invalid_request",
        `Invalid request: ${
          r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")
        }`,
        400,
      );
    }
    return r.data;
  }

  /** Returns an error response when the action's password is required and wrong. */
  async function checkPassword(
    c: Context,
    action: ProtectedAction,
    password: string | undefined,
  ) {
    const hash = deps.engine.passwordHashFor(action);
    if (!hash) return null;
    const t = now();
    failures = failures.filter((x) => t - x < 60_000);
    if (failures.length >= budget) {
      return err(
        c,
        429,
        "too_many_attempts",
        `Too many wrong passwords: try ${action} again in a minute`,
      );
    }
    if (password === undefined) {
      return err(c, 403, "password_required", `The policy requires a password to ${action}`);
    }
    // One check at a time, and the attempt is counted before the slow scrypt
    // runs (forgiven on success), so parallel guesses cannot outrun the budget.
    if (checking) {
      return err(
        c,
        429,
        "too_many_attempts",
        `Another password check is in progress: try ${action} again in a moment`,
      );
    }
    checking = true;
    failures.push(t);
    let ok = false;
    try {
      ok = await verifyPassword(password, hash);
    } finally {
      checking = false;
    }
    if (!ok) return err(c, 403, "wrong_password", `Wrong password for ${action}`);
    const i = failures.lastIndexOf(t);
    if (i >= 0) failures.splice(i, 1);
    return null;
  }

  async function run(c: Context, event: EngineEvent) {
    const r = await deps.engine.dispatch(event);
    if (!r.ok) return err(c, 409, "invalid_state", r.reason);
    return c.json({ ok: true, state: r.state.kind });
  }

  app.post("/api/v1/actions/:action", async (c) => {
    const action = c.req.param("action");
    const b = await body(c);
    switch (action) {
      case "restart":
        if (deps.onRestart) {
          setTimeout(deps.onRestart, 0);
          return c.json({ ok: true, state: "restarting", pid: Deno.pid });
        }
        return run(c, { type: "restart_requested" });
      case "enable":
        return run(c, { type: "enable_requested" });
      case "repair": {
        if (!deps.repair) return err(c, 501, "not_supported", "Repair is not available here");
        return c.json({ ok: true, report: await deps.repair.run() });
      }
      case "enroll": {
        if (!b.key) {
          return err(c, 400, "key_required", 'Give the enrolment key as {"key": "pc1.…"}');
        }
        const r = await deps.engine.enrollWithKey(b.key.trim());
        if (!r.ok) return err(c, 409, "invalid_state", r.reason);
        return c.json({ ok: true, state: r.state.kind });
      }
      case "check-update": {
        if (!deps.updates) return err(c, 501, "not_supported", "Updates are not available here");
        return c.json({ ok: true, update: await deps.updates.check() });
      }
      case "update-policy": {
        // "Update policy" also looks for a new connector release (in the background).
        void deps.updates?.check();
        try {
          const r = await deps.engine.updatePolicy();
          return c.json({ ok: true, ...r });
        } catch (e) {
          const pe = e as PortcullisError;
          return err(c, 502, pe.code ?? "update_failed", `Cannot update policy: ${pe.message}`);
        }
      }
      case "disable":
      case "logout":
      case "exit": {
        const denied = await checkPassword(c, action, b.password);
        if (denied) return denied;
        if (action === "disable") return run(c, { type: "disable_requested" });
        if (action === "logout") return run(c, { type: "logout_requested" });
        if (!deps.onExit) return err(c, 501, "not_supported", "Exit is not available here");
        setTimeout(deps.onExit, 0);
        return c.json({ ok: true, state: "exiting" });
      }
      case "uninstall": {
        const denied = await checkPassword(c, action, b.password);
        if (denied) return denied;
        if (!deps.onUninstall) {
          return err(c, 501, "not_supported", "Uninstall is not available here");
        }
        setTimeout(deps.onUninstall, 0);
        return c.json({ ok: true, state: "uninstalling" });
      }
    }
    return err(c, 404, "unknown_action", `Unknown action "${action.slice(0, 40)}"`);
  });

  return app;
}
