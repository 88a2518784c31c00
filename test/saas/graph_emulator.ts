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

/** A file or folder in a drive. */
export interface EmuItem {
  id: string;
  name: string;
  parentId: string | null;
  folder: boolean;
  content: Uint8Array;
  contentVersion: number;
  version: number;
  /** Change sequence of the last change (delta). */
  changed: number;
  deleted: boolean;
  createdBy: string;
  permissions: EmuPermission[];
}

/** A permission on an item; `link` makes it a sharing link. */
export interface EmuPermission {
  id: string;
  roles: string[];
  link?: { scope: "anonymous" | "organization" | "users"; type: "view" | "edit"; webUrl: string };
  grantedTo?: string;
}

/** A drive (a user's OneDrive or a site's library). */
export interface EmuDrive {
  id: string;
  owner: string;
  rootId: string;
  items: Map<string, EmuItem>;
}

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

const b64 = (o: unknown) =>
  btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const unb64 = (s: string) => JSON.parse(atob(s.replace(/-/g, "+").replace(/_/g, "/")));

/** The emulator. */
export class GraphEmulator {
  users: { id: string; userPrincipalName: string; driveId: string | null }[] = [];
  sites: { id: string; displayName: string; driveIds: string[] }[] = [];
  drives = new Map<string, EmuDrive>();
  log: EmuRequest[] = [];
  throttles: ThrottleRule[] = [];
  /** Completed content downloads per item id. */
  downloads = new Map<string, number>();
  /** Items per delta page. */
  pageSize = 200;
  /** Called before a download is answered; a test can hold it (a promise) to interrupt a scan. */
  beforeDownload: ((itemId: string, signal: AbortSignal) => Promise<void> | void) | null = null;
  #seq = 1;
  #ids = 0;
  #downloadTokens = new Map<string, { driveId: string; itemId: string }>();
  #listings = new Map<string, { ids: string[]; upto: number }>();
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

  #id(prefix: string): string {
    return `${prefix}${(++this.#ids).toString(16).padStart(8, "0")}`;
  }

  /** Adds a user with a OneDrive (or without one). */
  addUser(upn: string, withDrive = true): EmuDrive | null {
    const drive = withDrive ? this.addDrive(upn) : null;
    this.users.push({ id: this.#id("user-"), userPrincipalName: upn, driveId: drive?.id ?? null });
    return drive;
  }

  /** Adds a SharePoint site with document libraries. */
  addSite(name: string, libraries: string[]): EmuDrive[] {
    const drives = libraries.map((l) => this.addDrive(`${name}/${l}`));
    this.sites.push({
      id: this.#id("site-"),
      displayName: name,
      driveIds: drives.map((d) => d.id),
    });
    return drives;
  }

  addDrive(owner: string): EmuDrive {
    const id = `b!${this.#id("drv")}`;
    const rootId = this.#id("root-");
    const drive: EmuDrive = { id, owner, rootId, items: new Map() };
    drive.items.set(rootId, {
      id: rootId,
      name: "root",
      parentId: null,
      folder: true,
      content: new Uint8Array(),
      contentVersion: 1,
      version: 1,
      changed: this.#seq++,
      deleted: false,
      createdBy: owner,
      permissions: [],
    });
    this.drives.set(id, drive);
    return drive;
  }

  /** Adds a file (or folder) under `parentId` (default: the root). */
  addItem(
    drive: EmuDrive,
    name: string,
    content: string | Uint8Array | null,
    o: { parentId?: string; links?: EmuPermission["link"][] } = {},
  ): EmuItem {
    const id = this.#id("01ITEM");
    const item: EmuItem = {
      id,
      name,
      parentId: o.parentId ?? drive.rootId,
      folder: content === null,
      content: typeof content === "string"
        ? new TextEncoder().encode(content)
        : content ?? new Uint8Array(),
      contentVersion: 1,
      version: 1,
      changed: this.#seq++,
      deleted: false,
      createdBy: drive.owner,
      permissions: [
        { id: "owner", roles: ["owner"], grantedTo: drive.owner },
        ...(o.links ?? []).map((l, i) => ({
          id: `link-${id}-${i}`,
          roles: [l!.type === "edit" ? "write" : "read"],
          link: l,
        })),
      ],
    };
    drive.items.set(id, item);
    return item;
  }

  /** Changes a file's content (new cTag). */
  modify(drive: EmuDrive, id: string, content: string): void {
    const it = drive.items.get(id)!;
    it.content = new TextEncoder().encode(content);
    it.contentVersion++;
    it.version++;
    it.changed = this.#seq++;
  }

  /** Deletes an item (a tombstone in the next delta). */
  remove(drive: EmuDrive, id: string): void {
    const it = drive.items.get(id)!;
    it.deleted = true;
    it.changed = this.#seq++;
  }

  /** The path of an item's parent, as parentReference.path shows it. */
  #path(drive: EmuDrive, item: EmuItem): string {
    const parts: string[] = [];
    let p = item.parentId ? drive.items.get(item.parentId) : undefined;
    while (p && p.parentId) {
      parts.unshift(p.name);
      p = drive.items.get(p.parentId);
    }
    return `/drives/${drive.id}/root:${parts.length ? "/" + parts.join("/") : ""}`;
  }

  /** A driveItem resource as Graph returns it. */
  itemJson(drive: EmuDrive, it: EmuItem): Record<string, unknown> {
    if (it.deleted) {
      return { id: it.id, deleted: { state: "deleted" }, parentReference: { driveId: drive.id } };
    }
    const base: Record<string, unknown> = {
      id: it.id,
      name: it.name,
      eTag: `"{${it.id}},${it.version}"`,
      cTag: `"c:{${it.id}},${it.contentVersion}"`,
      size: it.content.length,
      webUrl: `https://contoso-my.sharepoint.com/personal/${encodeURIComponent(drive.owner)}/${
        encodeURIComponent(it.name)
      }`,
      createdBy: { user: { email: it.createdBy, displayName: it.createdBy } },
      parentReference: it.parentId
        ? { driveId: drive.id, driveType: "business", id: it.parentId, path: this.#path(drive, it) }
        : { driveId: drive.id, driveType: "business" },
    };
    if (!it.parentId) return { ...base, root: {}, folder: { childCount: 0 } };
    if (it.folder) {
      return {
        ...base,
        folder: {
          childCount: [...drive.items.values()].filter((c) =>
            c.parentId === it.id && !c.deleted
          ).length,
        },
      };
    }
    return { ...base, file: { mimeType: "text/plain", hashes: {} } };
  }

  /** Files of a drive under a folder (by name, at the root). */
  filesIn(drive: EmuDrive, folderName: string): EmuItem[] {
    const f = [...drive.items.values()].find((i) =>
      i.folder && i.parentId === drive.rootId && i.name === folderName && !i.deleted
    );
    return f ? [...drive.items.values()].filter((i) => i.parentId === f.id && !i.deleted) : [];
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
      return this.#delta(d, u);
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
      it.version++;
      it.changed = this.#seq++;
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
      it.version++;
      it.changed = this.#seq++;
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

  /**
   * A delta page. A listing is fixed when it starts (the items changed
   * after `since`, in change order), so moving a file while the client
   * pages does not shift the pages; a file changed meanwhile is listed
   * again by the next delta, as Graph may do. Tokens are opaque to the client.
   */
  #delta(d: EmuDrive, u: URL): Response {
    const token = u.searchParams.get("token");
    let listing: { ids: string[]; upto: number };
    let offset = 0;
    try {
      const t = token ? unb64(token) : { since: 0 };
      if (typeof t.l === "string") {
        const l = this.#listings.get(t.l);
        if (!l) throw new Error("unknown listing");
        listing = l;
        offset = Number(t.o);
      } else {
        const since = Number(t.since);
        if (!Number.isInteger(since)) throw new Error("bad token");
        const ids = [...d.items.values()]
          .filter((i) => i.changed > since && (since > 0 || !i.deleted))
          .sort((a, b) => a.changed - b.changed)
          .map((i) => i.id);
        listing = { ids, upto: this.#seq };
        const id = crypto.randomUUID();
        this.#listings.set(id, listing);
        (t as { l?: string }).l = id;
        u.searchParams.set("token", b64({ l: id, o: 0 }));
      }
    } catch {
      return graphError(410, "resyncRequired", "The delta token is not valid; resynchronise.");
    }
    const listingId = unb64(u.searchParams.get("token")!).l as string;
    const page = listing.ids.slice(offset, offset + this.pageSize).map((id) => d.items.get(id)!);
    const base = `${this.graphUrl}/drives/${encodeURIComponent(d.id)}/root/delta`;
    const body: Record<string, unknown> = {
      "@odata.context": `${this.graphUrl}/$metadata#Collection(driveItem)`,
      value: page.map((i) => this.itemJson(d, i)),
    };
    if (offset + this.pageSize < listing.ids.length) {
      body["@odata.nextLink"] = `${base}?token=${b64({ l: listingId, o: offset + this.pageSize })}`;
    } else {
      body["@odata.deltaLink"] = `${base}?token=${b64({ since: listing.upto - 1 })}`;
    }
    return json(body);
  }
}
