/**
 * The login and admin API. Admins authenticate with a console session (an
 * HttpOnly cookie, plus the session's CSRF token in `X-CSRF-Token` on every
 * unsafe request) or with an admin API token (`Authorization: Bearer pca_…`,
 * no cookie, so no CSRF exposure).
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import { createMiddleware } from "hono/factory";
import { InputError, NotFoundError } from "../../errors.ts";
import {
  deleteDevice,
  deviceView,
  disableDevice,
  enableDevice,
  getDevice,
} from "../../edge/devices.ts";
import { setUserDisabled } from "../../edge/user_disable.ts";
import { userGroups } from "../../identity/signin.ts";
import type { Store, UserRecord } from "../../store/mod.ts";
import { createEnrollmentKey, keyView } from "../../edge/enrollment_keys.ts";
import { parseDuration } from "../../duration.ts";
import { POLICY_COLLECTIONS, type PolicyCollection } from "../../edge/policy.ts";
import { checkPacTemplates } from "../../edge/pac_files.ts";
import { randomId, randomToken, sha256Hex } from "../../identity/secrets.ts";
import { authenticate, createUser } from "../../identity/users.ts";
import { logger } from "../../log.ts";
import {
  CreateKeyRequest,
  CreateTokenRequest,
  CreateUserRequest,
  DecisionQuery,
  ExplainRequest,
  LoginRequest,
  SetClockSkewRequest,
  SetPasswordsRequest,
  SetSignInLifetimeRequest,
} from "./admin_schemas.ts";
import {
  protectionView,
  setClockSkewTolerance,
  setProtectionPasswords,
  setSignInLifetime,
} from "../../edge/protection_passwords.ts";
import { explainAccess } from "../../edge/access/explain.ts";
import { buildBundle, bundleFileName } from "../../diag/export_bundle.ts";
import { clientIp, iso, queryInt, readJson } from "./common.ts";
import { dlpAdminApi } from "./dlp_api.ts";
import { webAdminApi } from "./web_api.ts";
import { fleetAdminApi } from "./fleet_api.ts";
import { releasesAdminApi } from "./releases_api.ts";
import { saasAdminApi, tenantJson } from "./saas_api.ts";
import { identityProviderApi } from "./idp_api.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";
import { SSE_HEADERS, sseStream, StreamSlots } from "./sse.ts";
import { zdxFleet } from "../../edge/zdx.ts";

const log = logger("auth");

/** Name of the console session cookie. */
export const SESSION_COOKIE = "pc_session";

/** Largest policy PUT body (8 MiB: room for 10,000 segments with several prefixes each). */
export const POLICY_LIMIT = 8 * 1024 * 1024;

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function userView(u: UserRecord, store?: Store) {
  return {
    id: u.id,
    username: u.username,
    role: u.role,
    /** Local groups (the ones an admin sets). */
    groups: u.groups,
    /** Every group with where it came from: the IdP (at the last sign-in) or local. */
    groupSources: userGroups(u),
    email: u.email,
    provider: u.providerId ? store?.identityProviders.get(u.providerId)?.name ?? null : null,
    disabled: u.disabled,
    lastSignInAt: u.lastSignInAt === null ? null : iso(u.lastSignInAt),
    devices: store
      ? store.devices.byUser(u.username).map((d) => ({ id: d.id, hostname: d.hostname }))
      : [],
    createdAt: iso(u.createdAt),
  };
}

/** Builds the auth sub-app (mounted at /api/v1/auth). */
export function authApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const { ctx, sessions, rateLimiter } = deps;
  const app = new Hono<EdgeEnv>();

  app.post("/login", async (c) => {
    const body = await readJson(c, LoginRequest);
    const ip = clientIp(c);
    // Reserve the attempt before the slow password check so concurrent
    // attempts cannot all slip past the failure budget.
    const r = rateLimiter.reserve(body.username, ip);
    if (!r.ok) {
      const secs = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
      c.header("Retry-After", String(secs));
      throw new InputError(
        "too_many_attempts",
        r.reason === "in_flight"
          ? `Too many logins in progress for this user or address; try again in ${secs} seconds`
          : `Too many failed logins; try again in ${secs} seconds`,
        429,
      );
    }
    let user: Awaited<ReturnType<typeof authenticate>>;
    try {
      user = await authenticate(ctx.store, ctx.clock, body.username, body.password, body.totp);
    } catch (err) {
      r.reservation.fail();
      throw err;
    }
    if (!user) {
      r.reservation.fail();
      log.warn("login failed", { username: body.username.slice(0, 64), ip });
      throw new InputError(
        "invalid_credentials",
        "Cannot log in: wrong username, password or one-time code",
        401,
      );
    }
    r.reservation.succeed();
    const { id, csrfToken } = sessions.create(user.id, ip);
    const now = ctx.clock.now();
    ctx.store.audit.insert({
      at: now,
      actor: `user:${user.username}`,
      action: "auth.login",
      target: user.id,
      detail: { ip },
    });
    setCookie(c, SESSION_COOKIE, id, {
      httpOnly: true,
      sameSite: "Strict",
      path: "/",
      secure: new URL(c.req.url).protocol === "https:",
      maxAge: Math.floor(sessions.options.ttlMs / 1000),
    });
    return c.json({
      user: { id: user.id, username: user.username, role: user.role },
      csrfToken,
      expiresAt: iso(now + sessions.options.ttlMs),
      serverTime: iso(now),
    }, 200);
  });

  app.post("/logout", (c) => {
    const id = getCookie(c, SESSION_COOKIE);
    const active = id ? sessions.resolve(id) : undefined;
    if (!active) throw new InputError("unauthorized", "Cannot log out: no console session", 401);
    if (!sessions.checkCsrf(active.session, c.req.header("x-csrf-token"))) {
      throw new InputError("csrf_failed", "Cannot log out: missing or wrong X-CSRF-Token", 403);
    }
    sessions.destroy(id!);
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    return c.json({ loggedOut: true, serverTime: iso(ctx.clock.now()) }, 200);
  });

  app.get("/session", (c) => {
    const id = getCookie(c, SESSION_COOKIE);
    // ?peek=1 checks without refreshing the idle timer (used by open streams).
    const active = id ? sessions.resolve(id, { touch: c.req.query("peek") !== "1" }) : undefined;
    if (!active) throw new InputError("unauthorized", "No console session", 401);
    return c.json({
      user: userView(active.user),
      csrfToken: active.session.csrfToken,
      expiresAt: iso(active.session.expiresAt),
      serverTime: iso(ctx.clock.now()),
    }, 200);
  });
  return app;
}

/** Builds the admin sub-app (mounted at /api/v1/admin). */
export function adminApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const { ctx, sessions } = deps;
  const { store, clock } = ctx;
  const app = new Hono<EdgeEnv>();

  const requireAdmin = createMiddleware<EdgeEnv>(async (c, next) => {
    const auth = c.req.header("authorization");
    if (auth !== undefined) {
      const m = /^Bearer (pca_[A-Za-z0-9_-]{20,100})$/.exec(auth);
      const token = m ? store.apiTokens.byHash(sha256Hex(m[1])) : undefined;
      const user = token ? store.users.byId(token.userId) : undefined;
      if (!token || !user) {
        throw new InputError(
          "unauthorized",
          "Cannot authenticate: the API token is not valid",
          401,
        );
      }
      if (user.role !== "admin") {
        throw new InputError("forbidden", `User "${user.username}" is not an administrator`, 403);
      }
      store.apiTokens.touch(token.id, clock.now());
      c.set("user", user);
      c.set("session", undefined);
      c.set("actor", `token:${token.name}`);
      return await next();
    }
    const id = getCookie(c, SESSION_COOKIE);
    const active = id ? sessions.resolve(id) : undefined;
    if (!active) {
      throw new InputError("unauthorized", "Log in first: no valid console session", 401);
    }
    if (active.user.role !== "admin") {
      throw new InputError(
        "forbidden",
        `User "${active.user.username}" is not an administrator`,
        403,
      );
    }
    if (
      UNSAFE.has(c.req.method) && !sessions.checkCsrf(active.session, c.req.header("x-csrf-token"))
    ) {
      throw new InputError(
        "csrf_failed",
        "Refused a state-changing request without the session's X-CSRF-Token header",
        403,
      );
    }
    c.set("user", active.user);
    c.set("session", active.session);
    c.set("actor", `user:${active.user.username}`);
    await next();
  });
  app.use("*", requireAdmin);

  // Open notification streams per admin session or API token.
  const streams = new StreamSlots();

  /**
   * A re-check of the credential that opened a stream, without refreshing the
   * session's idle timer: false once the session ended, the token was deleted
   * or the user is no longer an administrator.
   */
  function adminStillValid(auth: string | undefined, cookie: string | undefined) {
    if (auth !== undefined) {
      const m = /^Bearer (pca_[A-Za-z0-9_-]{20,100})$/.exec(auth);
      const hash = m ? sha256Hex(m[1]) : "";
      return () => {
        const token = hash ? store.apiTokens.byHash(hash) : undefined;
        return !!token && store.users.byId(token.userId)?.role === "admin";
      };
    }
    return () => {
      const active = cookie ? sessions.resolve(cookie, { touch: false }) : undefined;
      return active?.user.role === "admin";
    };
  }

  const now = () => clock.now();
  const audit = (c: Context<EdgeEnv>, action: string, target: string | null, detail = {}) =>
    store.audit.insert({ at: now(), actor: c.get("actor"), action, target, detail });

  // Users
  app.get(
    "/users",
    (c) => c.json({ users: store.users.list().map((u) => userView(u, store)) }, 200),
  );
  app.post("/users/:id/disable", (c) => {
    const id = c.req.param("id");
    if (id === c.get("user").id) {
      throw new InputError(
        "cannot_disable_self",
        "Cannot disable the user you are logged in as",
        409,
      );
    }
    setUserDisabled(ctx, id, true, c.get("actor"));
    return c.json(userView(store.users.byId(id)!, store), 200);
  });
  app.post("/users/:id/enable", (c) => {
    const id = c.req.param("id");
    setUserDisabled(ctx, id, false, c.get("actor"));
    return c.json(userView(store.users.byId(id)!, store), 200);
  });
  app.post("/users", async (c) => {
    const req = await readJson(c, CreateUserRequest);
    const created = await createUser(store, clock, req, deps.scrypt);
    audit(c, "user.create", created.user.id, { username: created.user.username, role: req.role });
    return c.json({
      user: userView(created.user),
      totp: { secret: created.totpSecret, otpauthUri: created.otpauthUri },
    }, 201);
  });
  app.delete("/users/:id", (c) => {
    const id = c.req.param("id");
    const target = store.users.byId(id);
    if (!target) throw new NotFoundError("user_not_found", `Cannot find user "${id.slice(0, 64)}"`);
    if (target.id === c.get("user").id) {
      throw new InputError(
        "cannot_delete_self",
        "Cannot delete the user you are logged in as",
        409,
      );
    }
    store.transaction(() => {
      if (
        target.role === "admin" && store.users.list().filter((u) => u.role === "admin").length <= 1
      ) {
        throw new InputError("last_admin", "Cannot delete the last administrator", 409);
      }
      store.users.delete(id);
      audit(c, "user.delete", id, { username: target.username });
    });
    return c.json({ deleted: true }, 200);
  });

  // API tokens
  app.get("/tokens", (c) =>
    c.json({
      tokens: store.apiTokens.list().map((t) => ({
        id: t.id,
        name: t.name,
        userId: t.userId,
        createdAt: iso(t.createdAt),
        lastUsedAt: t.lastUsedAt === null ? null : iso(t.lastUsedAt),
      })),
    }, 200));
  app.post("/tokens", async (c) => {
    const { name } = await readJson(c, CreateTokenRequest);
    const token = `pca_${randomToken(32)}`;
    const id = randomId("tok", 6);
    store.transaction(() => {
      store.apiTokens.insert({
        id,
        tokenHash: sha256Hex(token),
        name,
        userId: c.get("user").id,
        createdAt: now(),
        lastUsedAt: null,
      });
      audit(c, "token.create", id, { name });
    });
    return c.json({ id, name, token }, 201);
  });
  app.delete("/tokens/:id", (c) => {
    const id = c.req.param("id");
    store.transaction(() => {
      if (!store.apiTokens.delete(id)) {
        throw new NotFoundError("token_not_found", `Cannot find API token "${id.slice(0, 64)}"`);
      }
      audit(c, "token.delete", id);
    });
    return c.json({ deleted: true }, 200);
  });

  // Enrolment keys
  app.get(
    "/enrollment-keys",
    (c) => c.json({ keys: store.enrollmentKeys.list().map((k) => keyView(k, now())) }, 200),
  );
  app.post("/enrollment-keys", async (c) => {
    const req = await readJson(c, CreateKeyRequest);
    const { key, record } = createEnrollmentKey(store, clock, {
      reusable: req.reusable,
      expiresInMs: parseDuration(req.expires),
      group: req.group,
      machine: req.machine,
      createdBy: c.get("actor"),
      apiUrl: ctx.apiUrl,
      caSha256: ctx.caSha256,
    });
    return c.json({ key, ...keyView(record, now()) }, 201);
  });
  app.post("/enrollment-keys/:id/revoke", (c) => {
    const id = c.req.param("id");
    const k = store.enrollmentKeys.byId(id);
    if (!k) {
      throw new NotFoundError("key_not_found", `Cannot find enrolment key "${id.slice(0, 64)}"`);
    }
    store.transaction(() => {
      if (store.enrollmentKeys.revoke(id, now())) audit(c, "enrollment_key.revoke", id);
    });
    return c.json(keyView(store.enrollmentKeys.byId(id)!, now()), 200);
  });

  // Devices
  // Digital experience of the fleet: per app, per device, per edge, and the hops over time.
  app.get("/zdx", (c) => {
    const hours = queryInt(c, "hours", 1, 24 * 7, 24);
    return c.json(zdxFleet(ctx, hours * 3600_000), 200);
  });

  app.get("/devices", (c) => {
    const leases = store.leases.all();
    const stats = ctx.tunnel.peerStats();
    return c.json({
      devices: store.devices.list().map((d) => deviceView(ctx, d, leases.get(d.id) ?? null, stats)),
    }, 200);
  });
  app.get("/devices/:id", (c) => {
    const d = getDevice(ctx, c.req.param("id"));
    const posture = store.posture.latest(d.id);
    const reg = store.c2c.get(d.id);
    return c.json({
      ...deviceView(ctx, d),
      posture: posture
        ? {
          passed: posture.passed,
          receivedAt: iso(posture.receivedAt),
          collectedAt: posture.collectedAt,
          report: posture.body,
          // The edge's own judgement now (expired results count as failed), and every check.
          profiles: [...ctx.posture.profiles(d.id)].map(([profile, s]) => ({
            profile,
            passed: s.passed && s.expiresAt > ctx.clock.now(),
            reason: s.expiresAt > ctx.clock.now() ? s.reason : `expired at ${iso(s.expiresAt)}`,
            evaluatedAt: iso(s.evaluatedAt),
            expiresAt: iso(s.expiresAt),
          })),
          results: store.posture.results(d.id).map((r) => ({
            profile: r.profile,
            check: r.check,
            passed: r.passed,
            expected: r.expected,
            actual: r.actual,
          })),
        }
        : null,
      clientToClient: reg
        ? {
          fqdn: reg.fqdn,
          valid: reg.valid,
          reason: reg.reason,
          registeredAt: iso(reg.registeredAt),
        }
        : null,
    }, 200);
  });
  app.post("/devices/:id/disable", (c) => {
    const d = disableDevice(ctx, c.req.param("id"), c.get("actor"));
    return c.json(deviceView(ctx, d), 200);
  });
  app.post("/devices/:id/enable", (c) => {
    const d = enableDevice(ctx, c.req.param("id"), c.get("actor"));
    return c.json(deviceView(ctx, d), 200);
  });
  app.delete("/devices/:id", (c) => {
    deleteDevice(ctx, c.req.param("id"), c.get("actor"));
    return c.json({ deleted: true }, 200);
  });

  // Policy
  app.get("/policy/client-to-client", (c) => c.json(ctx.policy.clientToClient(), 200));
  app.put("/policy/client-to-client", async (c) => {
    const body = await readJson(c, z.unknown());
    return c.json(ctx.policy.replaceClientToClient(body, c.get("actor")), 200);
  });
  app.get("/policy/preview", (c) => {
    const group = c.req.query("group");
    return c.json({ policy: ctx.policy.bundleFor(group ?? null), serverTime: iso(now()) }, 200);
  });
  app.get("/policy/passwords", (c) => c.json({ profiles: protectionView(ctx.policy) }, 200));
  app.put("/policy/app-profiles/:name/passwords", async (c) => {
    const body = await readJson(c, SetPasswordsRequest);
    const view = await setProtectionPasswords(
      ctx.policy,
      c.req.param("name"),
      body,
      c.get("actor"),
      deps.scrypt,
    );
    return c.json({ ...view, revision: ctx.policy.revision() }, 200);
  });
  app.put("/policy/app-profiles/:name/signin-lifetime", async (c) => {
    const body = await readJson(c, SetSignInLifetimeRequest);
    const view = setSignInLifetime(ctx.policy, c.req.param("name"), body.hours, c.get("actor"));
    return c.json({ ...view, revision: ctx.policy.revision() }, 200);
  });
  app.put("/policy/app-profiles/:name/clock-skew", async (c) => {
    const body = await readJson(c, SetClockSkewRequest);
    const view = setClockSkewTolerance(
      ctx.policy,
      c.req.param("name"),
      body.toleranceSec,
      c.get("actor"),
    );
    return c.json({ ...view, revision: ctx.policy.revision() }, 200);
  });
  const collection = (c: Context<EdgeEnv>): PolicyCollection => {
    const name = c.req.param("collection") ?? "";
    if (!Object.hasOwn(POLICY_COLLECTIONS, name)) {
      throw new NotFoundError(
        "not_found",
        `Unknown policy collection "${name.slice(0, 64)}"; expected one of ${
          Object.keys(POLICY_COLLECTIONS).join(", ")
        }`,
      );
    }
    return name as PolicyCollection;
  };
  app.get("/policy/:collection", (c) => {
    const col = collection(c);
    return c.json({ items: ctx.policy.list(col), revision: ctx.policy.revision() }, 200);
  });
  app.put("/policy/:collection", async (c) => {
    const col = collection(c);
    const body = await readJson(c, z.object({ items: z.unknown() }).strict(), POLICY_LIMIT);
    // A PAC template must run in the sandbox before it is stored (asynchronous, so here).
    if (col === "app-profiles") await checkPacTemplates(body.items);
    try {
      const items = ctx.policy.replace(col, body.items, c.get("actor"));
      return c.json({ items, revision: ctx.policy.revision() }, 200);
    } catch (err) {
      // Report paths relative to the body, e.g. items[0].name.
      if (err instanceof z.ZodError) {
        for (const i of err.issues) i.path.unshift("items");
      }
      throw err;
    }
  });

  // Notifications
  app.get("/notifications", (c) => {
    const after = queryInt(c, "after", 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = queryInt(c, "limit", 1, 500, 100);
    return c.json({ notifications: store.notifications.list({ afterId: after, limit }) }, 200);
  });
  app.post("/notifications/:id/read", (c) => {
    const id = c.req.param("id");
    if (!/^\d{1,15}$/.test(id) || !store.notifications.markRead(Number(id), now())) {
      throw new NotFoundError(
        "notification_not_found",
        `Cannot find notification "${id.slice(0, 20)}"`,
      );
    }
    return c.json({ read: true }, 200);
  });
  app.get("/notifications/stream", (c) => {
    const auth = c.req.header("authorization");
    const stillValid = adminStillValid(auth, getCookie(c, SESSION_COOKIE));
    // One slot pool per session, or per API token; a fifth stream closes the oldest.
    const session = c.get("session");
    const evicted = new AbortController();
    const release = streams.acquire(
      session ? `s:${session.idHash}` : `t:${sha256Hex(auth ?? "")}`,
      () => evicted.abort(),
    );
    const body = sseStream(deps.sseKeepaliveMs, async (w, signal) => {
      for await (const n of ctx.notifier.subscribe({ signal })) {
        w.send("notification", n, String(n.id));
      }
    }, { stillValid, onClose: release, signal: evicted.signal });
    return c.body(body, 200, SSE_HEADERS);
  });

  // Audit log
  app.get("/audit", (c) => {
    const before = queryInt(c, "before", 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    const limit = queryInt(c, "limit", 1, 500, 100);
    return c.json({
      entries: store.audit.list({ beforeId: before, limit }).map((e) => ({ ...e, at: iso(e.at) })),
    }, 200);
  });

  // Data loss prevention
  app.route("/dlp", dlpAdminApi(deps));

  // Internet security: URL rules, categories, web log
  app.route("/web", webAdminApi(deps));

  // Access decisions, "why?" and the diagnostics bundle
  app.get("/decisions", (c) => {
    const q = DecisionQuery.parse(c.req.query());
    const rows = store.decisions.list({
      deviceId: q.device,
      user: q.user,
      verdict: q.verdict,
      rule: q.rule,
      dst: q.dst,
      since: q.since === undefined ? undefined : Date.parse(q.since),
      until: q.until === undefined ? undefined : Date.parse(q.until),
      beforeId: q.before,
      limit: q.limit,
    });
    return c.json({
      decisions: rows.map((d) => ({ ...d, at: iso(d.at) })),
      next: rows.length === q.limit ? rows[rows.length - 1].id : null,
    }, 200);
  });
  app.post("/access/explain", async (c) => {
    const req = await readJson(c, ExplainRequest);
    const out = explainAccess(ctx, req.device, req);
    return c.json({ ...out, serverTime: iso(now()) }, 200);
  });
  // SaaS tenants as the API shows them (names, IDs, grants, flags; never a
  // secret or key) and their recent scans, when there are any.
  const saasRecords = (): Record<string, unknown[]> => {
    const tenants = ctx.saas.tenants.tenants();
    if (!tenants.length) return {};
    return {
      saasTenants: tenants.map(tenantJson),
      saasScans: tenants.flatMap((t) =>
        ctx.saas.scanner.scans(t.id, 5).map((s) => ({ tenant: t.name, ...s }))
      ),
    };
  };
  app.get("/diagnostics", (c) => {
    const at = now();
    const zip = buildBundle({
      role: "edge",
      version: deps.productVersion ?? "unknown",
      logs: deps.logs?.() ?? [],
      logFiles: ctx.logFiles?.(),
      state: {
        devices: store.devices.list().length,
        policyRevision: ctx.policy.revision(),
        dataPlane: ctx.dataPlaneState?.() ?? null,
        tables: store.tableCounts(),
        // The fleet as this edge sees it: every edge's health, heartbeat and devices.
        edges: ctx.fleet.views(),
      },
      config: {
        network: ctx.network,
        edgeAddress: ctx.edgeAddress,
        apiUrl: ctx.apiUrl,
        endpoints: ctx.endpoints,
        clientToClient: ctx.policy.clientToClient(),
        saas: { authorityUrl: ctx.saas.authorityUrl, graphUrl: ctx.saas.graphUrl },
      },
      notifications: store.notifications.list({ afterId: 0, limit: 500 }),
      records: {
        decisions: store.decisions.list({ limit: 10_000 }).map((d) => ({ ...d, at: iso(d.at) })),
        ...saasRecords(),
      },
      now: at,
    });
    audit(c, "diagnostics.export", null, { size: zip.length });
    return c.body(new Uint8Array(zip), 200, {
      "Content-Type": "application/zip",
      "Content-Disposition": `attachment; filename="${bundleFileName("edge", at)}"`,
    });
  });

  // Microsoft SaaS tenants
  app.route("/saas", saasAdminApi(deps));
  // The fleet's edges (several edges on one database)
  app.route("/edges", fleetAdminApi(deps));
  // Connector releases and update rules
  app.route("/updates", releasesAdminApi(deps));
  app.route("/identity-providers", identityProviderApi(deps));

  // Support requests
  app.get("/support-requests", (c) =>
    c.json({
      requests: store.support.list().map((r) => ({ ...r, createdAt: iso(r.createdAt) })),
    }, 200));
  app.get("/support-requests/:id/bundle", (c) => {
    const id = c.req.param("id");
    const bytes = store.support.bundle(id);
    if (!bytes) {
      throw new NotFoundError(
        "support_request_not_found",
        `Cannot find support request "${id.slice(0, 64)}"`,
      );
    }
    return c.body(new Uint8Array(bytes), 200, {
      "Content-Type": "application/zip",
      "Content-Disposition": `attachment; filename="${id.replace(/[^A-Za-z0-9_]/g, "")}.zip"`,
    });
  });

  return app;
}
