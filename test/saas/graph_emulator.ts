/**
 * A Microsoft Graph emulator for data-at-rest scanning tests, written from
 * Graph's published response shapes (v1.0): users and their drives,
 * SharePoint sites and their document libraries, `driveItem` resources
 * (`file`/`folder`/`root`/`deleted` facets, `cTag`, `eTag`,
 * `parentReference`), delta queries paged with `@odata.nextLink` and
 * ending in `@odata.deltaLink` (a later delta returns only what changed,
 * deletions as `deleted` items), `/content` answered with a 302 to a
 * pre-authenticated download URL, item permissions with sharing links,
 * DELETE of a permission, PATCH to move an item, folder creation and
 * path addressing, and Graph's error body (`{"error": {"code",
 * "message"}}`).
 *
 * Every request but the pre-authenticated download needs a bearer token
 * the test issuer signed (checked against its JWKS), for Graph, carrying a
 * role Graph requires for the call; otherwise 401/403 as Graph answers.
 * Throttling is injected per request (429 or 503 with Retry-After), and
 * every request is logged with its time, so a test can check that the
 * client waited as long as it was asked to.
 */
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import type { TlsFixture } from "../connector/tls_fixture.ts";

import { GraphData } from "./graph_data.ts";

export type { EmuDrive, EmuItem, EmuPermission } from "./graph_data.ts";

/** One logged request. */
export interface EmuRequest {
  at: number;
  method: string;
  path: string;
  status: number;
  /** The Retry-After header of a throttled answer. */
  retryAfter: string | null;
}

/** Throttling to inject on the next requests that match. */
export interface ThrottleRule {
  /** Requests whose method and path match. */
  match: RegExp;
  status: 429 | 503;
  /** Retry-After header value ("2", or an HTTP date); omitted when undefined. */
  retryAfter?: string;
  /** How many matching requests to throttle. */
  times: number;
}

const ROLE_READ = [
  "Files.Read.All",
  "Files.ReadWrite.All",
  "Sites.Read.All",
  "Sites.ReadWrite.All",
];
const ROLE_WRITE = ["Files.ReadWrite.All", "Sites.ReadWrite.All"];
const ROLE_USERS = ["User.Read.All", "Directory.Read.All", "User.ReadWrite.All"];

function graphError(status: number, code: string, message: string, headers: HeadersInit = {}) {
  return new Response(
    JSON.stringify({ error: { code, message, innerError: { date: new Date().toISOString() } } }),
    {
      status,
      headers: { "content-type": "application/json", ...headers },
    },
  );
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json;odata.metadata=minimal" },
  });

/** The emulator. */
export class GraphEmulator extends GraphData {
  log: EmuRequest[] = [];
  throttles: ThrottleRule[] = [];
  /** Completed content downloads per item id. */
  downloads = new Map<string, number>();
  /** Called before a download is answered; a test can hold it (a promise) to interrupt a scan. */
  beforeDownload: ((itemId: string, signal: AbortSignal) => Promise<void> | void) | null = null;
  #downloadTokens = new Map<string, { driveId: string; itemId: string }>();
  #server: Deno.HttpServer | null = null;
  #keys: ReturnType<typeof createLocalJWKSet> | null = null;
  #issuer = "";
  url = "";

  /** Starts over HTTPS on 127.0.0.1; tokens are checked against `issuer` (its URL and JWKS). */
  async start(tls: TlsFixture, issuer: { url: string; tenantId: string }, fetchFn: typeof fetch) {
    const jwks = await (await fetchFn(`${issuer.url}/${issuer.tenantId}/discovery/v2.0/keys`))
      .json() as JSONWebKeySet;
    this.#keys = createLocalJWKSet(jwks);
    this.#issuer = issuer.url;
    this.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: tls.certPem,
      key: tls.keyPem,
      onListen: () => {},
    }, (req) => this.#handle(req));
    this.url = `https://127.0.0.1:${(this.#server.addr as Deno.NetAddr).port}`;
    return this;
  }

  /** The base URL the edge's saasGraphUrl is set to. */
  get graphUrl(): string {
    return `${this.url}/v1.0`;
  }

  async stop(): Promise<void> {
    await this.#server?.shutdown();
  }

  async #auth(req: Request, need: string[]): Promise<Response | null> {
    const m = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "");
    if (!m) return graphError(401, "InvalidAuthenticationToken", "Access token is empty.");
    let roles: string[] = [];
    try {
      const { payload } = await jwtVerify(m[1], this.#keys!, {
        issuer: this.#issuer,
        audience: "https://graph.microsoft.com",
      });
      roles = Array.isArray(payload.roles) ? payload.roles as string[] : [];
    } catch (e) {
      return graphError(
        401,
        "InvalidAuthenticationToken",
        `Access token validation failure: ${(e as Error).message}`,
      );
    }
    if (!need.some((r) => roles.includes(r))) {
      return graphError(
        403,
        "accessDenied",
        "Either scp or roles claim need to be present in the token.",
      );
    }
    return null;
  }

  async #handle(req: Request): Promise<Response> {
    const u = new URL(req.url);
    const path = u.pathname + u.search;
    const res = await this.#route(req, u).catch((e) =>
      graphError(500, "generalException", String(e))
    );
    this.log.push({
      at: Date.now(),
      method: req.method,
      path,
      status: res.status,
      retryAfter: res.headers.get("retry-after"),
    });
    return res;
  }

  #throttled(req: Request, u: URL): Response | null {
    const what = `${req.method} ${u.pathname}`;
    const rule = this.throttles.find((t) => t.times > 0 && t.match.test(what));
    if (!rule) return null;
    rule.times--;
    const headers: Record<string, string> = {};
    if (rule.retryAfter !== undefined) headers["retry-after"] = rule.retryAfter;
    return rule.status === 429
      ? graphError(429, "TooManyRequests", "Too many requests.", headers)
      : graphError(503, "serviceNotAvailable", "Service unavailable.", headers);
  }

  async #route(req: Request, u: URL): Promise<Response> {
    const p = u.pathname;
    // The pre-authenticated download URL: no token.
    const dl = /^\/_download\/([A-Za-z0-9_-]+)$/.exec(p);
    if (dl) {
      const t = this.#downloadTokens.get(dl[1]);
      if (!t) return graphError(404, "itemNotFound", "The download URL has expired.");
      const throttled = this.#throttled(req, u);
      if (throttled) return throttled;
      await this.beforeDownload?.(t.itemId, req.signal);
      // A client that went away meanwhile (an edge stopping) did not get the file.
      if (req.signal.aborted) {
        return graphError(499, "clientGone", "The client closed the request.");
      }
      const it = this.drives.get(t.driveId)!.items.get(t.itemId)!;
      this.downloads.set(t.itemId, (this.downloads.get(t.itemId) ?? 0) + 1);
      return new Response(it.content.slice(), {
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(it.content.length),
        },
      });
    }
    if (!p.startsWith("/v1.0/")) {
      return graphError(400, "invalidRequest", `Invalid version: ${p.split("/")[1]}`);
    }
    const path = p.slice(5);
    const throttled = this.#throttled(req, u);
    if (throttled) return throttled;

    let m: RegExpExecArray | null;
    if (req.method === "GET" && path === "/users") {
      const denied = await this.#auth(req, ROLE_USERS);
      if (denied) return denied;
      return this.#collection(
        u,
        this.users.map((x) => ({
          id: x.id,
          userPrincipalName: x.userPrincipalName,
          mail: x.userPrincipalName,
        })),
      );
    }
    if (req.method === "GET" && (m = /^\/users\/([^/]+)\/drive$/.exec(path))) {
      const denied = await this.#auth(req, ROLE_READ);
      if (denied) return denied;
      const user = this.users.find((x) => x.id === decodeURIComponent(m![1]));
      if (!user?.driveId) {
        return graphError(404, "itemNotFound", "The user's OneDrive could not be found.");
      }
      const d = this.drives.get(user.driveId)!;
      return json({ id: d.id, driveType: "business", owner: { user: { email: d.owner } } });
    }
    if (req.method === "GET" && path === "/sites/getAllSites") {
      const denied = await this.#auth(req, ["Sites.Read.All", "Sites.ReadWrite.All"]);
      if (denied) return denied;
      return this.#collection(
        u,
        this.sites.map((s) => ({
          id: s.id,
          displayName: s.displayName,
          webUrl: `https://contoso.sharepoint.com/sites/${s.displayName}`,
        })),
      );
    }
    if (req.method === "GET" && (m = /^\/sites\/([^/]+)\/drives$/.exec(path))) {
      const denied = await this.#auth(req, ["Sites.Read.All", "Sites.ReadWrite.All"]);
      if (denied) return denied;
      const s = this.sites.find((x) => x.id === decodeURIComponent(m![1]));
      if (!s) return graphError(404, "itemNotFound", "The site could not be found.");
      return json({
        value: s.driveIds.map((id) => ({
          id,
          name: this.drives.get(id)!.owner.split("/").pop(),
          driveType: "documentLibrary",
        })),
      });
    }
    const drive = (id: string) => this.drives.get(decodeURIComponent(id));
    if (req.method === "GET" && (m = /^\/drives\/([^/]+)\/root\/delta$/.exec(path))) {
      const denied = await this.#auth(req, ROLE_READ);
      if (denied) return denied;
      const d = drive(m[1]);
      if (!d) return graphError(404, "itemNotFound", "The drive could not be found.");
      const r = this.delta(d, u, this.graphUrl);
      return json(r.body, r.status);
    }
    if (req.method === "GET" && (m = /^\/drives\/([^/]+)\/root:\/([^:]+):?$/.exec(path))) {
      const denied = await this.#auth(req, ROLE_READ);
      if (denied) return denied;
      const d = drive(m[1]);
      const name = decodeURIComponent(m[2]);
      const f = d &&
        [...d.items.values()].find((i) => i.parentId === d.rootId && i.name === name && !i.deleted);
      if (!d || !f) return graphError(404, "itemNotFound", "The resource could not be found.");
      return json(this.itemJson(d, f));
    }
    if (req.method === "POST" && (m = /^\/drives\/([^/]+)\/root\/children$/.exec(path))) {
      const denied = await this.#auth(req, ROLE_WRITE);
      if (denied) return denied;
      const d = drive(m[1])!;
      const body = await req.json();
      if (
        [...d.items.values()].some((i) =>
          i.parentId === d.rootId && i.name === body.name && !i.deleted
        )
      ) {
        return graphError(409, "nameAlreadyExists", "The specified item name already exists.");
      }
      const f = this.addItem(d, String(body.name), null);
      return json(this.itemJson(d, f), 201);
    }
    if ((m = /^\/drives\/([^/]+)\/items\/([^/]+)\/content$/.exec(path)) && req.method === "GET") {
      const denied = await this.#auth(req, ROLE_READ);
      if (denied) return denied;
      const d = drive(m[1]);
      const it = d?.items.get(decodeURIComponent(m[2]));
      if (!d || !it || it.deleted || it.folder) {
        return graphError(404, "itemNotFound", "The resource could not be found.");
      }
      const token = crypto.randomUUID().replaceAll("-", "");
      this.#downloadTokens.set(token, { driveId: d.id, itemId: it.id });
      return new Response(null, {
        status: 302,
        headers: { location: `${this.url}/_download/${token}` },
      });
    }
    if (
      (m = /^\/drives\/([^/]+)\/items\/([^/]+)\/permissions$/.exec(path)) && req.method === "GET"
    ) {
      const denied = await this.#auth(req, ROLE_READ);
      if (denied) return denied;
      const it = drive(m[1])?.items.get(decodeURIComponent(m[2]));
      if (!it) return graphError(404, "itemNotFound", "The resource could not be found.");
      return json({
        value: it.permissions.map((x) => ({
          id: x.id,
          roles: x.roles,
          ...(x.link ? { link: x.link } : { grantedToV2: { user: { email: x.grantedTo } } }),
        })),
      });
    }
    if (
      (m = /^\/drives\/([^/]+)\/items\/([^/]+)\/permissions\/([^/]+)$/.exec(path)) &&
      req.method === "DELETE"
    ) {
      const denied = await this.#auth(req, ROLE_WRITE);
      if (denied) return denied;
      const d = drive(m[1]);
      const it = d?.items.get(decodeURIComponent(m[2]));
      const pid = decodeURIComponent(m[3]);
      if (!d || !it || !it.permissions.some((x) => x.id === pid)) {
        return graphError(404, "itemNotFound", "The permission could not be found.");
      }
      it.permissions = it.permissions.filter((x) => x.id !== pid);
      this.touch(it);
      return new Response(null, { status: 204 });
    }
    if ((m = /^\/drives\/([^/]+)\/items\/([^/]+)$/.exec(path)) && req.method === "PATCH") {
      const denied = await this.#auth(req, ROLE_WRITE);
      if (denied) return denied;
      const d = drive(m[1]);
      const it = d?.items.get(decodeURIComponent(m[2]));
      if (!d || !it || it.deleted) {
        return graphError(404, "itemNotFound", "The resource could not be found.");
      }
      const body = await req.json();
      const parent = body.parentReference?.id ?? it.parentId;
      const name = body.name ?? it.name;
      if (
        [...d.items.values()].some((i) =>
          i.id !== it.id && i.parentId === parent && i.name === name && !i.deleted
        )
      ) {
        return graphError(409, "nameAlreadyExists", "The specified item name already exists.");
      }
      it.parentId = parent;
      it.name = name;
      this.touch(it);
      return json(this.itemJson(d, it));
    }
    return graphError(
      400,
      "BadRequest",
      `Resource not found for the segment '${path.split("/")[1] ?? ""}'.`,
    );
  }

  #collection(u: URL, all: unknown[]): Response {
    const top = Math.min(Number(u.searchParams.get("$top") ?? "100") || 100, 999);
    const skip = Number(u.searchParams.get("$skiptoken") ?? "0") || 0;
    const page = all.slice(skip, skip + top);
    const body: Record<string, unknown> = { value: page };
    if (skip + top < all.length) {
      const next = new URL(u);
      next.searchParams.set("$skiptoken", String(skip + top));
      body["@odata.nextLink"] = next.toString();
    }
    return json(body);
  }
}
