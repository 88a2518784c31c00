/**
 * DLP over REST. Admin (mounted under /api/v1/admin/dlp, behind the admin
 * authentication): dictionaries with EDM CSV uploads, rules, incidents with
 * their export, and a test tool that inspects an uploaded file against the
 * policy without recording anything. Devices (mounted under /api/v1/dlp,
 * with the device credential): the device's DLP bundle with an ETag, and
 * signed incident reports.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { authenticateDevice } from "../../edge/devices.ts";
import { EDM_UPLOAD_LIMIT } from "../../edge/dlp.ts";
import { InputError } from "../../errors.ts";
import { type Channel, CHANNELS, type DlpAction, inspectUpload } from "../../dlp/mod.ts";
import { SignedIncident } from "../../dlp/report.ts";
import type { DlpIncidentRecord } from "../../store/mod.ts";
import { iso, queryInt, readBodyLimited, readJson } from "./common.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";

/** Largest file the admin test tool inspects (32 MiB). */
export const INSPECT_LIMIT = 32 * 1024 * 1024;

/** An incident as the API shows it (times as ISO text). */
export function incidentView(i: DlpIncidentRecord) {
  return { ...i, occurredAt: iso(i.occurredAt), receivedAt: iso(i.receivedAt) };
}

const decodeName = (c: Context) => {
  const raw = c.req.param("name") ?? "";
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new InputError(
      "invalid_request",
      "Invalid request: the dictionary name is not valid URL encoding",
    );
  }
};

function oneOf<T extends string>(c: Context, name: string, values: readonly T[]): T | undefined {
  const v = c.req.query(name);
  if (v === undefined || v === "") return undefined;
  if (!(values as readonly string[]).includes(v)) {
    throw new InputError(
      "invalid_request",
      `Invalid request: query parameter "${name}": expected one of ${values.join(", ")}, got ${
        JSON.stringify(v.slice(0, 40))
      }`,
    );
  }
  return v as T;
}

/** The admin DLP routes (mount inside the admin app, after its authentication). */
export function dlpAdminApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const { ctx } = deps;
  const dlp = ctx.dlp;
  const app = new Hono<EdgeEnv>();

  app.get(
    "/dictionaries",
    (c) => c.json({ dictionaries: dlp.dictionaries(), revision: dlp.revision() }, 200),
  );
  app.put("/dictionaries/:name", async (c) => {
    const body = await readJson(c, z.record(z.string(), z.unknown()));
    return c.json(dlp.putDictionary(decodeName(c), body, c.get("actor")), 200);
  });
  app.post("/dictionaries/:name/edm", async (c) => {
    const ct = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (ct !== "text/csv" && ct !== "text/plain") {
      throw new InputError(
        "unsupported_media_type",
        `Expected Content-Type "text/csv", got "${ct || "none"}"`,
        415,
      );
    }
    const bytes = await readBodyLimited(c, EDM_UPLOAD_LIMIT);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new InputError("invalid_csv", "Cannot read the CSV file: it is not UTF-8 text");
    }
    const view = dlp.uploadEdm(decodeName(c), text, c.get("actor"));
    // The CSV bytes are dropped with this request; only hashes were kept.
    bytes.fill(0);
    return c.json(view, 200);
  });
  app.delete("/dictionaries/:name", (c) => {
    dlp.deleteDictionary(decodeName(c), c.get("actor"));
    return c.json({ deleted: true }, 200);
  });

  app.get("/rules", (c) => c.json({ items: dlp.rules(), revision: dlp.revision() }, 200));
  app.put("/rules", async (c) => {
    const body = await readJson(c, z.object({ items: z.unknown() }).strict(), 1024 * 1024);
    try {
      return c.json({
        items: dlp.replaceRules(body.items, c.get("actor")),
        revision: dlp.revision(),
      }, 200);
    } catch (err) {
      if (err instanceof z.ZodError) { for (const i of err.issues) i.path.unshift("items"); }
      throw err;
    }
  });

  const filter = (c: Context) => ({
    beforeReceivedAt: c.req.query("before")
      ? queryInt(c, "before", 1, Number.MAX_SAFE_INTEGER, 0)
      : undefined,
    channel: oneOf(c, "channel", CHANNELS),
    action: oneOf(c, "action", ["notify", "block"] as const),
    deviceId: c.req.query("device") || undefined,
  });
  app.get("/incidents", (c) => {
    const limit = queryInt(c, "limit", 1, 500, 100);
    return c.json({ incidents: dlp.incidents({ ...filter(c), limit }).map(incidentView) }, 200);
  });
  app.get("/incidents/export", (c) => {
    const all = dlp.incidents({ ...filter(c), limit: 50_000 }).map(incidentView);
    ctx.store.audit.insert({
      at: ctx.clock.now(),
      actor: c.get("actor"),
      action: "dlp.incidents.export",
      target: null,
      detail: { count: all.length },
    });
    return c.body(
      JSON.stringify({ exportedAt: iso(ctx.clock.now()), incidents: all }, null, 2),
      200,
      {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Disposition": 'attachment; filename="dlp-incidents.json"',
      },
    );
  });
  app.get("/incidents/:id", (c) => c.json(incidentView(dlp.incident(c.req.param("id"))), 200));

  // The test tool: what would the policy do with this file, for this user, on this channel?
  app.post("/inspect", async (c) => {
    const ct = c.req.header("content-type") ?? "";
    if (!ct.toLowerCase().startsWith("multipart/form-data")) {
      throw new InputError(
        "unsupported_media_type",
        `Expected Content-Type "multipart/form-data", got "${ct.split(";")[0] || "none"}"`,
        415,
      );
    }
    const bytes = await readBodyLimited(c, INSPECT_LIMIT + 64 * 1024);
    let form: FormData;
    try {
      form = await new Response(bytes, { headers: { "content-type": ct } }).formData();
    } catch {
      throw new InputError("malformed_form", "Request body is not valid multipart/form-data");
    }
    const file = form.get("file");
    if (!(file instanceof File)) {
      throw new InputError("invalid_request", "Invalid request: file: expected a file");
    }
    const channel = String(form.get("channel") ?? "web_upload");
    if (!(CHANNELS as readonly string[]).includes(channel)) {
      throw new InputError(
        "invalid_request",
        `Invalid request: channel: expected one of ${CHANNELS.join(", ")}`,
      );
    }
    const user = String(form.get("user") ?? "").trim().slice(0, 256) || null;
    const groups = String(form.get("groups") ?? "").split(",").map((g) => g.trim()).filter(Boolean);
    const v = await inspectUpload(dlp.policy(), new Uint8Array(await file.arrayBuffer()), {
      subject: { user, groups },
      channel: channel as Channel,
      fileName: file.name,
    });
    return c.json({
      action: v.action satisfies DlpAction,
      rule: v.rule,
      reason: v.reason,
      matches: v.matches,
      files: v.files.map((f) => ({
        name: f.name,
        fileType: f.fileType,
        size: f.size,
        skipped: f.skipped,
      })),
    }, 200);
  });
  return app;
}

/** The device DLP routes (mount at /api/v1/dlp). */
export function dlpDeviceApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const { ctx } = deps;
  const app = new Hono<EdgeEnv>();
  app.use(
    "*",
    createMiddleware<EdgeEnv>(async (c, next) => {
      c.set(
        "device",
        authenticateDevice(
          ctx,
          c.req.header("authorization"),
          c.req.header("x-device-fingerprint"),
        ),
      );
      await next();
    }),
  );
  app.get("/policy", (c) => {
    const bundle = ctx.dlp.bundleFor(c.get("device"));
    c.header("ETag", `"${bundle.version}"`);
    c.header("Cache-Control", "no-cache");
    const inm = c.req.header("if-none-match") ?? "";
    if (
      inm.split(",").some((t) => t.trim().replace(/^W\//, "").replace(/"/g, "") === bundle.version)
    ) {
      return c.body(null, 304);
    }
    return c.json({ dlp: bundle, serverTime: iso(ctx.clock.now()) }, 200);
  });
  app.post("/incidents", async (c) => {
    const { payload, signature } = await readJson(c, SignedIncident, 96 * 1024);
    const r = ctx.dlp.acceptReport(c.get("device"), payload, signature);
    return c.json({ ...r, serverTime: iso(ctx.clock.now()) }, r.duplicate ? 200 : 201);
  });
  return app;
}
