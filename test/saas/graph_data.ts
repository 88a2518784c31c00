/**
 * The data behind the Graph emulator (graph_emulator.ts): users and their
 * OneDrives, SharePoint sites and their libraries, drive items with their
 * change sequence, and delta listings — shaped as Graph's v1.0 resources.
 */

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

/** A user with (or without) a OneDrive. */
export interface EmuUser {
  id: string;
  userPrincipalName: string;
  driveId: string | null;
}

const b64 = (o: unknown) =>
  btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const unb64 = (s: string) => JSON.parse(atob(s.replace(/-/g, "+").replace(/_/g, "/")));

/** Users, sites, drives and items, with Graph's JSON shapes and delta listings. */
export class GraphData {
  users: EmuUser[] = [];
  sites: { id: string; displayName: string; driveIds: string[] }[] = [];
  drives = new Map<string, EmuDrive>();
  /** Items per delta page. */
  pageSize = 200;

  #seq = 1;
  #ids = 0;
  #listings = new Map<string, { ids: string[]; upto: number }>();

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
  pathOf(drive: EmuDrive, item: EmuItem): string {
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
        ? {
          driveId: drive.id,
          driveType: "business",
          id: it.parentId,
          path: this.pathOf(drive, it),
        }
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

  /**
   * A delta page. A listing is fixed when it starts (the items changed
   * after `since`, in change order), so moving a file while the client
   * pages does not shift the pages; a file changed meanwhile is listed
   * again by the next delta, as Graph may do. Tokens are opaque to the client.
   */
  delta(d: EmuDrive, u: URL, graphUrl: string): { status: number; body: Record<string, unknown> } {
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
      return {
        status: 410,
        body: {
          error: {
            code: "resyncRequired",
            message: "The delta token is not valid; resynchronise.",
          },
        },
      };
    }
    const listingId = unb64(u.searchParams.get("token")!).l as string;
    const page = listing.ids.slice(offset, offset + this.pageSize).map((id) => d.items.get(id)!);
    const base = `${graphUrl}/drives/${encodeURIComponent(d.id)}/root/delta`;
    const body: Record<string, unknown> = {
      "@odata.context": `${graphUrl}/$metadata#Collection(driveItem)`,
      value: page.map((i) => this.itemJson(d, i)),
    };
    if (offset + this.pageSize < listing.ids.length) {
      body["@odata.nextLink"] = `${base}?token=${b64({ l: listingId, o: offset + this.pageSize })}`;
    } else {
      body["@odata.deltaLink"] = `${base}?token=${b64({ since: listing.upto - 1 })}`;
    }
    return { status: 200, body };
  }

  /** Records a change to an item that is not its content (a move, a permission removed). */
  touch(it: EmuItem): void {
    it.version++;
    it.changed = this.#seq++;
  }
}
