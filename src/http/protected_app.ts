/**
 * "Am I protected?" — served by the edge on its tunnel address (port 80), at
 * the well-known name `protected.portcullis.internal` that the edge's DNS
 * resolves to that address. Only traffic that came through a Portcullis
 * tunnel can reach it from a device address, and the tunnel's allowed-IPs
 * check guarantees the source address belongs to the device that sent it,
 * so the page can name the device and its user.
 *
 * Browsers get a small HTML page; `Accept: application/json` (the CLI) gets
 * `{ protected, device, hostname, user, address, via, serverTime }`.
 */
import { Hono } from "hono";
import type { EdgeContext } from "../edge/context.ts";
import { deviceForAddress } from "../edge/devices.ts";

/** Answer of the protection check. */
export interface ProtectionAnswer {
  protected: boolean;
  device: string | null;
  hostname: string | null;
  user: string | null;
  address: string;
  reason: string;
  serverTime: string;
}

/** Decides what the page says for a request from `remote`. */
export function protectionFor(ctx: EdgeContext, remote: string): ProtectionAnswer {
  const ip = remote.replace(/^::ffff:/, "");
  const d = deviceForAddress(ctx, ip);
  const base = { address: ip, serverTime: new Date(ctx.clock.now()).toISOString() };
  if (!d) {
    return {
      ...base,
      protected: false,
      device: null,
      hostname: null,
      user: null,
      reason: `The request came from ${ip}, which is not a Portcullis tunnel address.`,
    };
  }
  if (d.disabled) {
    return {
      ...base,
      protected: false,
      device: d.id,
      hostname: d.hostname,
      user: d.user,
      reason: "The device is disabled.",
    };
  }
  return {
    ...base,
    protected: true,
    device: d.id,
    hostname: d.hostname,
    user: d.user,
    reason: `The request came through the Portcullis tunnel of device ${d.hostname}.`,
  };
}

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

/** Builds the app; `remoteOf` extracts the client address from a request (main.ts knows how). */
export function createProtectedApp(ctx: EdgeContext, remoteOf: (req: Request) => string): Hono {
  const app = new Hono();
  app.get("/", (c) => {
    const a = protectionFor(ctx, remoteOf(c.req.raw));
    c.header("Cache-Control", "no-store");
    if ((c.req.header("Accept") ?? "").includes("application/json")) return c.json(a);
    const title = a.protected ? "Yes — you are protected by Portcullis" : "No — not protected";
    const color = a.protected ? "#0a7d32" : "#b3261e";
    const rows = [
      ["Device", a.hostname ?? "—"],
      ["User", a.user ?? "—"],
      ["Tunnel address", a.address],
    ].map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`).join("");
    return c.html(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>` +
        `<meta name="viewport" content="width=device-width,initial-scale=1"></head>` +
        `<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem">` +
        `<h1 style="color:${color}">${esc(title)}</h1><p>${esc(a.reason)}</p>` +
        `<table>${rows}</table></body></html>`,
    );
  });
  app.notFound((c) =>
    c.json({
      error: {
        code: "not_found",
        message: `No such page: ${c.req.method} ${
          c.req.path.slice(0, 200)
        }; this server answers GET /`,
      },
    }, 404)
  );
  return app;
}
