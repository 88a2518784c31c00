/**
 * The connector's local console (127.0.0.1): four tabs — Internet Security,
 * Private Access, Notifications, More — over the connector's own service
 * objects: the engine (status, policy, update, restart, disable, logout),
 * the notification hub (live events) and the state store (history), plus
 * the diagnostics (packet capture, log export, support request).
 *
 * The console has no login (it is local to the device) but still refuses
 * what a hostile web page could make a browser send: requests whose Host is
 * not a loopback name (DNS rebinding) and state-changing requests without
 * the console's CSRF token (cross-site forms). Disable, logout and exit ask
 * for the profile's password when the policy sets one.
 */
import type { UpdateStatus } from "../../connector/updater.ts";
import type { Context } from "hono";
import type { DoctorReport } from "../../diag/doctor/mod.ts";
import { DoctorPage } from "./connector_doctor_page.tsx";
import { ZdxPage } from "./connector_zdx_page.tsx";
import type { ZdxStatus } from "../../zdx/runner.ts";
import { Hono } from "hono";
import { type Clock, systemClock } from "../../clock.ts";
import type { EngineStatus } from "../../connector/engine/mod.ts";
import { LOCAL_REQUEST_HEADER } from "../connector_app.ts";
import type { EdgeApi } from "../../connector/edge_api.ts";
import type { DeviceIdentity } from "../../connector/identity.ts";
import type { CaptureController } from "../../diag/capture.ts";
import { buildBundle, bundleFileName } from "../../diag/export_bundle.ts";
import { InputError, PortcullisError } from "../../errors.ts";
import { constantTimeEqual, randomToken } from "../../identity/secrets.ts";
import { type Level, logger, logLevel, type RingSink, setLogLevel } from "../../log.ts";
import type { PolicyBundle, ProtectedAction } from "../../policy/types.ts";
import type { ConnectorState, Notification } from "../../store/connector_state.ts";
import { hasMessage, type Lang, type Translate } from "../../../web/i18n/mod.ts";
import { FeedItem, NotFoundCard, type Tone } from "../../../web/components.tsx";
import { formatShortTime } from "../../../web/format.ts";
import { Layout } from "../../../web/layout.tsx";
import { SSE_HEADERS, sseStream } from "../api/sse.ts";
import { allowedHostGuard, LOOPBACK_HOSTS } from "./host_guard.ts";
import {
  consoleErrorHandler,
  type ConsoleVars,
  fragment,
  installConsoleBasics,
  page,
  readForm,
  renderToString,
} from "./common.ts";
import { type C2cStanding, PrivateCard, SegmentsCard } from "./connector_private_page.tsx";
import { installSignIn, SignInCard } from "./connector_signin.tsx";
import {
  authStatus,
  ConnectorNotificationsPage,
  InternetCard,
  MorePage,
  StateExplanation,
  stateLabel,
  stateTone,
  typeLabel,
} from "./connector_pages.tsx";
import { ConnectorDlpPage } from "./connector_dlp_page.tsx";
import type { DlpStatus } from "../../connector/dlp_agent.ts";
import type { RepairReport } from "../../connector/repair.ts";

const log = logger("console");

/** The engine reads the console makes (src/connector/engine.ts `Engine`). */
export interface ConsoleEngine {
  status(): EngineStatus;
  readonly policy: PolicyBundle | null;
  passwordHashFor(action: ProtectedAction): string | undefined;
}

/** What the connector console needs. */
export interface ConnectorConsoleDeps {
  /** The connector engine: status, policy, which actions need a password. */
  engine: ConsoleEngine;
  /** Browser sign-in through the edge (src/connector/browser_signin.ts); absent: none. */
  signIn?: {
    start(email: string, returnTo: string): string;
    finish(grant: string, state: string): Promise<{ username: string }>;
    local(username: string, password: string, totp: string): Promise<{ username: string }>;
  };
  /**
   * The connector's local JSON API (`createConnectorApp`), called in-process
   * for every engine action so the console and the API share one model.
   */
  api: { request: (req: Request) => Response | Promise<Response> };
  /** The notification hub (src/connector/notifications.ts): live events. */
  hub: { subscribe(signal: AbortSignal, type?: string): AsyncIterable<Notification> };
  /** The connector state store: notification history. */
  store: Pick<ConnectorState, "listNotifications">;
  /** Connector version. */
  version: string;
  /** The updater (src/connector/updater.ts): state shown on the More tab; absent: no card. */
  updates?: { status(): UpdateStatus };
  /** The ring of recent log records (added with addLogSink at start). */
  logs: RingSink;
  /** The log files in the data directory (src/diag/log_files.ts); absent: memory only. */
  logFiles?: { clear(): void; read(): { name: string; text: string }[] } | null;
  /** Packet capture of the tunnel interface; omitted → no capture buttons. */
  capture?: CaptureController | null;
  /** Sends a support request (message + bundle) to the edge; omitted → no Report button. */
  support?: (message: string, bundle: Uint8Array) => Promise<unknown>;
  /** Whether the Exit button is shown (the local API must have `onExit`); default true. */
  exitAvailable?: boolean;
  /** Whether the Uninstall button is shown (the local API must have `onUninstall`); default false. */
  uninstallAvailable?: boolean;
  /** The configuration in effect, for the log export (secrets are stripped there). */
  config?: unknown;
  clock?: Clock;
  /** Host names the console answers to; default loopback names on any port. */
  allowedHosts?: string[];
  /** SSE keepalive interval (ms); default 15000. */
  sseKeepaliveMs?: number;
  /** "Repair app": its last report (the API runs it); absent: no Repair button. */
  repair?: { readonly last: RepairReport | null } | null;
  /** Digital experience (the Experience tab); absent: no tab. */
  zdx?: { status(): ZdxStatus } | null;
  /** Endpoint DLP (the Data protection tab); absent or null: DLP is off. */
  dlp?: { status(): DlpStatus } | null;
}

type ConnectorConsoleEnv = { Variables: ConsoleVars };
type Ctx = Context<ConnectorConsoleEnv>;

/** Messages a redirect may ask the More tab to show (`?msg=`). */
const FLASH: Record<string, { tone: Tone; key: string }> = {
  policy_updated: { tone: "ok", key: "cflash.policy_updated" },
  policy_unchanged: { tone: "info", key: "cflash.policy_unchanged" },
  update_checked: { tone: "info", key: "cflash.update_checked" },
  update_refused: { tone: "warn", key: "cflash.update_refused" },
  restarted: { tone: "ok", key: "cflash.restarted" },
  capture_started: { tone: "ok", key: "cflash.capture_started" },
  capture_stopped: { tone: "ok", key: "cflash.capture_stopped" },
  logs_cleared: { tone: "ok", key: "cflash.logs_cleared" },
  repaired: { tone: "ok", key: "cflash.repaired" },
  repair_failed: { tone: "warn", key: "cflash.repair_failed" },
  log_mode: { tone: "ok", key: "cflash.log_mode" },
  reported: { tone: "ok", key: "cflash.reported" },
  disabled: { tone: "warn", key: "cflash.disabled" },
  enabled: { tone: "ok", key: "cflash.enabled" },
  logged_out: { tone: "warn", key: "cflash.logged_out" },
  enrolling: { tone: "ok", key: "cflash.enrolling" },
};

/** The type a notification is shown and filtered as: state changes by their new state. */
export function displayType(n: Notification): string {
  return n.type === "state_changed" && typeof n.data?.to === "string" ? n.data.to : n.type;
}

/** Client-to-client standing: the FQDN and the edge's answer to its registration ("Valid Hostname"). */
export function c2cStanding(s: EngineStatus): C2cStanding {
  if (!s.deviceFqdn) return { fqdn: null, valid: null, reason: null };
  const edge = s.clientToClient?.fqdn === s.deviceFqdn ? s.clientToClient : null;
  return { fqdn: s.deviceFqdn, valid: edge?.valid ?? null, reason: edge?.reason ?? null };
}

/**
 * A support sender for `ConnectorConsoleDeps.support`: an edge client for the
 * stored enrolment, authenticated with the device credential.
 */
export function edgeSupportSender(
  store: Pick<ConnectorState, "getEnrollment">,
  identity: Pick<DeviceIdentity, "credential" | "fingerprintHash">,
  makeClient: (apiUrl: string, caPem: string) => EdgeApi,
): (message: string, bundle: Uint8Array) => Promise<unknown> {
  return async (message, bundle) => {
    const e = store.getEnrollment();
    if (!e || !identity.credential) {
      throw new InputError(
        "not_enrolled",
        "Cannot report an issue: this device is not enrolled with an edge",
        409,
      );
    }
    const client = makeClient(e.apiUrl, e.caPem);
    client.setCredentials(identity.credential, identity.fingerprintHash);
    try {
      return await client.supportRequest(message, bundle, bundleFileName("connector", Date.now()));
    } finally {
      client.close();
    }
  };
}

/** Builds the connector console (mount at "/" of the console listener). */
export function createConnectorConsole(deps: ConnectorConsoleDeps): Hono<ConnectorConsoleEnv> {
  const clock = deps.clock ?? systemClock;
  const csrf = randomToken(24);
  const app = new Hono<ConnectorConsoleEnv>();

  // DNS rebinding: only answer to the names this console is meant to be reached by.
  app.use("*", allowedHostGuard(deps.allowedHosts ?? LOOPBACK_HOSTS));
  installConsoleBasics(app);

  const checkCsrf = (c: Ctx, form: Record<string, string>) => {
    const presented = form._csrf ?? c.req.header("x-csrf-token") ?? "";
    if (!constantTimeEqual(presented, csrf)) {
      throw new InputError(
        "csrf_failed",
        "Refused a console action without the console's CSRF token",
        403,
      );
    }
  };

  const feedItem = (t: Translate, lang: Lang, n: Notification) => {
    const type = displayType(n);
    const sevKey = `severity.${n.severity}`;
    return (
      <FeedItem
        id={`n-${n.id}`}
        type={type}
        typeLabel={typeLabel(t, type)}
        tone={n.severity === "error" ? "bad" : n.severity === "warn" ? "warn" : "info"}
        severityLabel={hasMessage(sevKey) ? t(sevKey) : n.severity}
        message={connectorText(t, n)}
        time={formatShortTime(n.ts, lang)}
        iso={new Date(n.ts).toISOString()}
      />
    );
  };

  function frame(c: Ctx, active: string, title: string, body: unknown, status = 200) {
    const t = c.get("t");
    const s = deps.engine.status();
    const tabs = [
      ["/", "internet", t("conn.tab.internet")],
      ["/private-access", "private", t("conn.tab.private")],
      ["/data-protection", "dlp", t("conn.tab.dlp")],
      ["/notifications", "notifications", t("conn.tab.notifications")],
      ...(deps.zdx ? [["/zdx", "zdx", t("conn.tab.zdx")]] : []),
      ["/more", "more", t("conn.tab.more")],
    ].map(([href, id, label]) => ({ href, label, active: id === active, id: `tab-${id}` }));
    return page(
      c,
      <Layout
        t={t}
        lang={c.get("lang")}
        title={title}
        roleLabel={t("conn.role")}
        status={{ tone: stateTone(s.state), label: stateLabel(t, s.state) }}
        statusUrl="/fragments/pill"
        tabs={tabs}
        path={c.req.path}
        csrf={csrf}
        live="/events"
        base=""
        footer={t("layout.footer", { version: deps.version })}
      >
        {body as never}
      </Layout>,
      status,
    );
  }

  // ---- Tabs ----
  app.get("/", (c) => {
    const t = c.get("t"), s = deps.engine.status();
    return frame(
      c,
      "internet",
      t("conn.tab.internet"),
      <div class="grid">
        <InternetCard t={t} lang={c.get("lang")} s={s} now={clock.now()} />
        <StateExplanation t={t} s={s} />
      </div>,
    );
  });
  const privatePage = (
    c: Ctx,
    signIn: { error?: string; continueUrl?: string } = {},
    status = 200,
  ) => {
    const t = c.get("t"), s = deps.engine.status();
    const p = deps.engine.policy;
    const wantsSignIn = deps.signIn !== undefined &&
      (authStatus(s).key.startsWith("auth.signin_required") || signIn.error !== undefined ||
        signIn.continueUrl !== undefined);
    return frame(
      c,
      "private",
      t("conn.tab.private"),
      <>
        <div class="grid">
          {wantsSignIn
            ? (
              <SignInCard
                t={t}
                csrf={csrf}
                error={signIn.error}
                continueUrl={signIn.continueUrl}
                renewFor={s.state === "signin_required" ? s.user ?? undefined : undefined}
              />
            )
            : null}
          <PrivateCard t={t} s={s} c2c={c2cStanding(s)} access={p?.access ?? []} />
          <SegmentsCard
            t={t}
            segments={p?.segments ?? []}
            access={p?.access ?? []}
            version={p?.version ?? null}
          />
        </div>
      </>,
      status,
    );
  };
  app.get("/private-access", (c) => privatePage(c));
  if (deps.signIn) {
    installSignIn(app, {
      signIn: deps.signIn,
      checkCsrf: (c, form) => checkCsrf(c as Ctx, form),
      privatePage: (c, o, status) => privatePage(c as Ctx, o, status),
    });
  }
  app.get("/data-protection", (c) => {
    const t = c.get("t"), lang = c.get("lang");
    const events = deps.store.listNotifications({ limit: 300 }).filter((n) =>
      n.type.startsWith("dlp_")
    )
      .slice(0, 20);
    return frame(
      c,
      "dlp",
      t("conn.tab.dlp"),
      <ConnectorDlpPage
        t={t}
        lang={lang}
        s={deps.dlp?.status() ?? null}
        events={events.map((n) => feedItem(t, lang, n))}
      />,
    );
  });
  app.get("/notifications", (c) => {
    const t = c.get("t"), lang = c.get("lang");
    const type = c.req.query("type") ?? "";
    const all = deps.store.listNotifications({ limit: 300 });
    const types = [...new Set(all.map(displayType))].sort();
    const shown = type ? all.filter((n) => displayType(n) === type) : all;
    return frame(
      c,
      "notifications",
      t("conn.tab.notifications"),
      <ConnectorNotificationsPage
        t={t}
        types={types}
        type={type}
        items={shown.map((n) => feedItem(t, lang, n))}
      />,
    );
  });

  const morePage = (c: Ctx, flash?: { tone: Tone; text: string }, status = 200) => {
    const t = c.get("t");
    const msg = c.req.query("msg");
    const f = flash ??
      (msg && Object.hasOwn(FLASH, msg)
        ? { tone: FLASH[msg].tone, text: t(FLASH[msg].key as never) }
        : undefined);
    return frame(
      c,
      "more",
      t("conn.tab.more"),
      <MorePage
        t={t}
        lang={c.get("lang")}
        m={{
          s: deps.engine.status(),
          version: deps.version,
          logMode: logLevel(),
          csrf,
          captures: deps.capture ? deps.capture.list() : null,
          canReport: deps.support !== undefined,
          canExit: deps.exitAvailable ?? true,
          passwordFor: {
            disable: deps.engine.passwordHashFor("disable") !== undefined,
            logout: deps.engine.passwordHashFor("logout") !== undefined,
            exit: deps.engine.passwordHashFor("exit") !== undefined,
            uninstall: deps.engine.passwordHashFor("uninstall") !== undefined,
          },
          canUninstall: deps.uninstallAvailable ?? false,
          flash: f,
          now: clock.now(),
          repair: deps.repair ? deps.repair.last : undefined,
          update: deps.updates?.status(),
        }}
      />,
      status,
    );
  };
  app.get("/more", (c) => morePage(c));
  app.get("/zdx", (c) => {
    const t = c.get("t");
    if (!deps.zdx) return c.notFound();
    return frame(
      c,
      "zdx",
      t("zdx.title"),
      <ZdxPage t={t} lang={c.get("lang")} z={deps.zdx.status()} now={clock.now()} />,
    );
  });
  // The doctor runs through the local JSON API in-process: one report, whichever way it is asked.
  app.get("/doctor", async (c) => {
    const t = c.get("t");
    const res = await deps.api.request(new Request("http://127.0.0.1/api/v1/diagnose"));
    if (!res.ok) {
      const body = await res.json().catch(() => null) as { error?: { message?: string } } | null;
      return morePage(c, {
        tone: "bad",
        text: body?.error?.message ?? t("error.unexpected_connector"),
      }, res.status >= 500 ? 502 : res.status);
    }
    const r = await res.json() as DoctorReport;
    return frame(c, "more", t("doctor.title"), <DoctorPage t={t} lang={c.get("lang")} r={r} />);
  });

  // ---- Fragments for live refresh ----
  app.get("/fragments/pill", (c) => {
    const t = c.get("t"), s = deps.engine.status();
    return fragment(
      c,
      <span class={`pill pill-${stateTone(s.state)}`} id="status-pill">
        <span class="dot" aria-hidden="true"></span>
        {stateLabel(t, s.state)}
      </span>,
    );
  });
  app.get("/fragments/internet", (c) =>
    fragment(
      c,
      <InternetCard
        t={c.get("t")}
        lang={c.get("lang")}
        s={deps.engine.status()}
        now={clock.now()}
      />,
    ));
  app.get("/fragments/private", (c) => {
    const s = deps.engine.status();
    return fragment(
      c,
      <PrivateCard
        t={c.get("t")}
        s={s}
        c2c={c2cStanding(s)}
        access={deps.engine.policy?.access ?? []}
      />,
    );
  });
  app.get("/fragments/segments", (c) => {
    const p = deps.engine.policy;
    return fragment(
      c,
      <SegmentsCard
        t={c.get("t")}
        segments={p?.segments ?? []}
        access={p?.access ?? []}
        version={p?.version ?? null}
      />,
    );
  });

  // ---- Actions ----
  const action = (
    path: string,
    run: (c: Ctx, form: Record<string, string>) => Promise<string>,
  ) => {
    app.post(path, async (c) => {
      const form = await readForm(c);
      try {
        checkCsrf(c, form);
        const msg = await run(c, form);
        return c.redirect(`/more?msg=${msg}`, 303);
      } catch (err) {
        const t = c.get("t");
        if (!(err instanceof PortcullisError)) {
          log.error("console action failed", { path, error: (err as Error).message });
        }
        const code = err instanceof PortcullisError ? err.code : "unexpected";
        const text = hasMessage(`error.${code}`)
          ? t(`error.${code}` as never)
          : err instanceof PortcullisError
          ? err.message
          : t("error.unexpected_connector");
        const status = err instanceof PortcullisError && err.status < 500 ? err.status : 500;
        return morePage(c, { tone: "bad", text }, status);
      }
    });
  };

  /** Runs an engine action through the local JSON API in-process (same checks, same budget). */
  const apiAction = async (name: string, form: Record<string, string> = {}) => {
    const fields: Record<string, string> = {};
    if (form.password) fields.password = form.password;
    if (form.key) fields.key = form.key;
    const body = JSON.stringify(fields);
    const res = await deps.api.request(
      new Request(`http://127.0.0.1/api/v1/actions/${name}`, {
        method: "POST",
        headers: {
          host: "127.0.0.1",
          "content-type": "application/json",
          [LOCAL_REQUEST_HEADER]: "1",
        },
        body,
      }),
    );
    const json = await res.json().catch(() => null);
    if (!res.ok) {
      const code = typeof json?.error?.code === "string" ? json.error.code : "action_failed";
      const message = typeof json?.error?.message === "string"
        ? json.error.message
        : `Cannot ${name}`;
      throw new InputError(code, message, res.status >= 500 ? 502 : res.status);
    }
    return json as { ok: true; status?: string; state?: string };
  };

  action("/actions/check-update", async () => {
    const r = await apiAction("check-update") as { update?: { state?: string } };
    return r.update?.state === "refused" ? "update_refused" : "update_checked";
  });
  action("/actions/update-policy", async () => {
    const r = await apiAction("update-policy");
    return r.status === "updated" ? "policy_updated" : "policy_unchanged";
  });
  app.post("/actions/restart", async (c) => {
    const form = await readForm(c);
    let r: { state?: string; pid?: number };
    try {
      checkCsrf(c, form);
      r = await apiAction("restart") as typeof r;
    } catch (err) {
      const e = err as PortcullisError;
      const t = c.get("t");
      const text = hasMessage(`error.${e.code}`) ? t(`error.${e.code}` as never) : e.message;
      return morePage(c, { tone: "bad", text }, e.status && e.status < 500 ? e.status : 502);
    }
    if (r.state !== "restarting") return c.redirect("/more?msg=restarted", 303);
    // The process is going away: a page that waits until its successor
    // answers (console.js polls the status for a new pid), then goes on.
    const t = c.get("t");
    return c.html(
      `<!DOCTYPE html><html lang="${
        c.get("lang")
      }"><head><meta charset="utf-8"><title>Portcullis</title><link rel="stylesheet" href="/static/console.css"><script src="/static/console.js" defer></script></head><body><main><h1 class="page-title" id="restarting" data-restart-from-pid="${
        Number(r.pid) || 0
      }" data-restart-next="/more?msg=restarted">${t("more.restarting")}</h1></main></body></html>`,
    );
  });
  action("/actions/disable", async (_c, form) => {
    await apiAction("disable", form);
    return "disabled";
  });
  action("/actions/enable", async () => {
    await apiAction("enable");
    return "enabled";
  });
  action("/actions/logout", async (_c, form) => {
    await apiAction("logout", form);
    return "logged_out";
  });
  action("/actions/enroll", async (_c, form) => {
    await apiAction("enroll", { key: (form.key ?? "").trim() });
    return "enrolling";
  });
  action("/actions/capture/start", () => {
    if (!deps.capture) {
      throw new InputError("capture_unavailable", "Packet capture is not available", 404);
    }
    deps.capture.start();
    return Promise.resolve("capture_started");
  });
  action("/actions/capture/stop", () => {
    deps.capture?.stop("user");
    return Promise.resolve("capture_stopped");
  });
  action("/actions/repair", async () => {
    const r = await apiAction("repair") as { report?: RepairReport };
    return (r.report?.failed ?? 0) > 0 ? "repair_failed" : "repaired";
  });
  action("/actions/clear-logs", () => {
    deps.logs.clear();
    deps.logFiles?.clear();
    log.info("logs cleared from the console");
    return Promise.resolve("logs_cleared");
  });
  action("/actions/log-mode", (_c, form) => {
    const level = form.level as Level;
    if (!["error", "warn", "info", "debug"].includes(level)) {
      throw new InputError(
        "invalid_request",
        `Cannot set log mode "${String(level).slice(0, 20)}"`,
      );
    }
    setLogLevel(level);
    log.warn("log mode changed from the console", { level });
    return Promise.resolve("log_mode");
  });
  action("/actions/report", async (_c, form) => {
    if (!deps.support) {
      throw new InputError("support_unavailable", "Reporting is not available", 404);
    }
    const message = (form.message ?? "").trim();
    if (message.length < 1 || message.length > 4000) {
      throw new InputError("invalid_message", "Describe the issue in 1 to 4000 characters");
    }
    await deps.support(message, await bundle());
    log.info("support request sent to the edge");
    return "reported";
  });
  /** Exit and uninstall: the process stops, so the answer is a last page of its own. */
  for (
    const [action, done] of [["exit", "more.exited"], ["uninstall", "more.uninstalled"]] as const
  ) {
    app.post(`/actions/${action}`, async (c) => {
      const form = await readForm(c);
      const t = c.get("t");
      try {
        checkCsrf(c, form);
        await apiAction(action, form);
      } catch (err) {
        const e = err as PortcullisError;
        const text = hasMessage(`error.${e.code}`) ? t(`error.${e.code}` as never) : e.message;
        return morePage(c, { tone: "bad", text }, e.status && e.status < 500 ? e.status : 502);
      }
      return c.html(
        `<!DOCTYPE html><html lang="${
          c.get("lang")
        }"><head><meta charset="utf-8"><title>Portcullis</title><link rel="stylesheet" href="/static/console.css"></head><body><main><h1 class="page-title" id="${action}-done">${
          t(done)
        }</h1></main></body></html>`,
      );
    });
  }

  // ---- Downloads ----
  async function bundle(): Promise<Uint8Array> {
    const captures = [];
    for (const info of deps.capture?.list() ?? []) {
      if (info.running) continue;
      try {
        captures.push({ name: info.file, bytes: await deps.capture!.read(info.id) });
      } catch {
        // pruned meanwhile
      }
    }
    return buildBundle({
      role: "connector",
      version: deps.version,
      logs: deps.logs.records(),
      logFiles: deps.logFiles?.read(),
      state: { status: deps.engine.status(), policy: deps.engine.policy, logMode: logLevel() },
      config: deps.config ?? null,
      notifications: deps.store.listNotifications({ limit: 500 }),
      captures,
      now: clock.now(),
    });
  }
  app.get("/export.zip", async (c) => {
    const zip = await bundle();
    return c.body(zip.slice(), 200, {
      "Content-Type": "application/zip",
      "Content-Disposition": `attachment; filename="${bundleFileName("connector", clock.now())}"`,
    });
  });
  app.get("/captures/:file", async (c) => {
    if (!deps.capture) return c.text("Not found", 404);
    const id = c.req.param("file").replace(/\.pcap$/, "");
    try {
      const bytes = await deps.capture.read(id);
      return c.body(bytes.slice(), 200, {
        "Content-Type": "application/vnd.tcpdump.pcap",
        "Content-Disposition": `attachment; filename="${id}.pcap"`,
      });
    } catch (err) {
      const e = err as PortcullisError;
      return c.text(e.message, (e.status ?? 404) as 404);
    }
  });

  // ---- Live events ----
  app.get("/events", (c) => {
    const t = c.get("t"), lang = c.get("lang");
    const body = sseStream(deps.sseKeepaliveMs ?? 15_000, async (w, signal) => {
      for await (const n of deps.hub.subscribe(signal)) {
        const type = displayType(n);
        w.send("notification", {
          id: n.id,
          type,
          html: await renderToString(feedItem(t, lang, n)),
          toast: connectorText(t, n),
        }, String(n.id));
        if (n.type === "policy_updated" && type !== "policy_updated") {
          w.send("notification", { id: n.id, type: "policy_updated" });
        }
      }
    });
    return c.body(body, 200, SSE_HEADERS);
  });

  app.onError(consoleErrorHandler("error.unexpected_connector"));
  // Unknown pages get the console's own page, not a bare "404 Not Found".
  app.notFound((c) => {
    const t = c.get("t");
    return frame(
      c,
      "",
      t("notfound.title"),
      <NotFoundCard
        title={t("notfound.title")}
        body={t("notfound.body", { path: c.req.path.slice(0, 200) })}
        back={t("notfound.back")}
      />,
      404,
    );
  });

  return app;
}

/** A connector notification's text in the page's language (stored English as the fallback). */
export function connectorText(t: Translate, n: Notification): string {
  if (n.type === "state_changed" && typeof n.data?.to === "string") {
    const key = `cnotify.state.${n.data.to}`;
    if (hasMessage(key)) {
      const reason = typeof n.data.reason === "string" ? n.data.reason : "";
      const transport = typeof n.data.transport === "string" ? n.data.transport.toUpperCase() : "";
      return t(key, { reason, transport }).replace(/\s*\(\)\s*$/, "");
    }
  }
  const key = `cnotify.${n.type}`;
  if (hasMessage(key)) {
    const params: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(n.data ?? {})) {
      if (typeof v === "string" || typeof v === "number") params[k] = v;
    }
    return t(key, params);
  }
  return n.message;
}
