/**
 * Data-at-rest scanning of Graph drives (OneDrive: one per user; SharePoint:
 * the document libraries of every site) with delta queries.
 *
 * Each drive keeps a cursor: the `@odata.nextLink` of the page being worked
 * through, or the `@odata.deltaLink` once a pass is complete. A page's
 * cursor advances only after the page's files are done, and every file is
 * recorded with its content tag (cTag) as it is done, so a scan cut off at
 * any point — the edge stopping, a crash — resumes from the saved link and
 * downloads nothing twice; the next scan asks Graph only for what changed.
 *
 * Files go through the content inspector (the DLP engine); a verdict other
 * than allow becomes an incident, and a blocking one is remediated as the
 * tenant asks — its sharing links removed, the file moved into a
 * quarantine folder at the root of its drive — when the permissions the
 * action needs were granted (`enabled`); otherwise the incident says which
 * permission is missing. Every executed action is audited by the caller.
 */
import { InputError } from "../errors.ts";
import { logger } from "../log.ts";
import type { SaasAction, SaasApp } from "./apps.ts";
import { type GraphClient, GraphError } from "./graph_client.ts";
import type { Remediation } from "./types.ts";

const log = logger("saas.scan");

/** Largest file downloaded for inspection (32 MiB, the DLP engine's upload limit). */
export const MAX_SCAN_BYTES = 32 * 1024 * 1024;

/** Files inspected at once. */
export const SCAN_CONCURRENCY = 4;

/** A drive to scan. */
export interface DriveRef {
  id: string;
  /** Who the files belong to, for DLP rules and incidents (a UPN, or the site's name). */
  owner: string;
}

/** The parts of a Graph driveItem the scanner reads. */
export interface DriveItem {
  id: string;
  name?: string;
  size?: number;
  cTag?: string;
  eTag?: string;
  file?: { mimeType?: string };
  folder?: unknown;
  deleted?: unknown;
  parentReference?: { id?: string; driveId?: string; path?: string };
  webUrl?: string;
  createdBy?: { user?: { email?: string; displayName?: string } };
}

/** What the inspector decided for one file. */
export interface Verdict {
  action: "allow" | "notify" | "block";
  rule: string | null;
  reason: string;
  fileType: string;
  sha256: string;
  matches: { dictionary: string; kind: string; count: number; samples: string[] }[];
}

/** The DLP engine, as the scanner sees it. */
export interface ContentInspector {
  /** Inspects one file's bytes for `owner`. */
  inspect(bytes: Uint8Array, name: string, owner: string): Promise<Verdict>;
}

/** A file with a finding, for the incident. */
export interface Finding {
  driveId: string;
  itemId: string;
  name: string;
  size: number;
  owner: string;
  webUrl: string | null;
  verdict: Verdict;
  /** What was done: one of FINDING_OUTCOMES. */
  outcome: FindingOutcome;
  /** The same in a sentence, naming a missing permission or a failure. */
  note: string;
}

/** What happened to a file with a finding. */
export const FINDING_OUTCOMES = [
  "reported",
  "quarantined",
  "quarantined_unshared",
  "unshared",
  "not_permitted",
  "remediation_failed",
] as const;
/** One of FINDING_OUTCOMES. */
export type FindingOutcome = typeof FINDING_OUTCOMES[number];

/** An executed remediation, for the audit log. */
export interface RemediationEvent {
  action: "quarantine" | "remove_sharing";
  driveId: string;
  itemId: string;
  name: string;
  detail: Record<string, unknown>;
}

/** Where the scanner keeps its state (the service implements it over the store). */
export interface ScanState {
  cursor(driveId: string): { link: string; kind: "next" | "delta" } | null;
  /** A drive is about to be scanned: remembers it with its first link when it is new. */
  beginDrive(drive: DriveRef, firstLink: string): void;
  /** A page is done: counts it and moves the drive's cursor to `link`. */
  pageDone(drive: DriveRef, link: string, kind: "next" | "delta"): void;
  /** The content tag last scanned for an item, or null. */
  itemTag(driveId: string, itemId: string): string | null;
  /** Records a scanned item (and its finding) in one transaction. */
  commitItem(
    drive: DriveRef,
    item: { id: string; tag: string; verdict: string },
    finding: Finding | null,
  ): void;
  forgetItem(driveId: string, itemId: string): void;
  quarantineFolder(driveId: string): string | null;
  setQuarantineFolder(driveId: string, folderId: string): void;
  /** Counts a file seen in a page (scanned or not). */
  seen(n: number): void;
  remediated(e: RemediationEvent): void;
}

/** Everything one scan needs. */
export interface ScanJob {
  app: SaasApp;
  graph: GraphClient;
  inspector: ContentInspector;
  state: ScanState;
  remediation: Remediation;
  /** Actions the tenant's grants enable now. */
  enabled: ReadonlySet<SaasAction>;
  /** For messages: which permissions an action needs. */
  missingFor: (action: SaasAction) => string;
  signal?: AbortSignal;
}

/** The drives of a tenant: users' OneDrives, or every site's libraries. */
export async function listDrives(graph: GraphClient, app: SaasApp): Promise<DriveRef[]> {
  const drives: DriveRef[] = [];
  if (app === "onedrive") {
    const users = await graph.all<{ id: string; userPrincipalName?: string; mail?: string }>(
      "/users?$select=id,userPrincipalName,mail&$top=999",
    );
    for (const u of users) {
      try {
        const d = await graph.get<{ id: string }>(`/users/${encodeURIComponent(u.id)}/drive`);
        drives.push({ id: d.id, owner: u.userPrincipalName ?? u.mail ?? u.id });
      } catch (e) {
        // A user without a OneDrive (no licence, never signed in) has none to scan.
        if (e instanceof GraphError && e.httpStatus === 404) continue;
        throw e;
      }
    }
  } else {
    const sites = await graph.all<{ id: string; displayName?: string; webUrl?: string }>(
      "/sites/getAllSites?$select=id,displayName,webUrl&$top=999",
    );
    for (const s of sites) {
      const libs = await graph.all<{ id: string; name?: string }>(
        `/sites/${encodeURIComponent(s.id)}/drives?$select=id,name`,
      );
      for (const d of libs) {
        drives.push({ id: d.id, owner: `${s.displayName ?? s.id}/${d.name ?? d.id}` });
      }
    }
  }
  return drives;
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

async function quarantineFolderId(job: ScanJob, driveId: string): Promise<string> {
  const known = job.state.quarantineFolder(driveId);
  if (known) return known;
  const name = job.remediation.quarantineFolder;
  const d = encodeURIComponent(driveId);
  let id: string;
  try {
    id = (await job.graph.get<{ id: string }>(`/drives/${d}/root:/${encodeURIComponent(name)}`)).id;
  } catch (e) {
    if (!(e instanceof GraphError && e.httpStatus === 404)) throw e;
    id = (await job.graph.send<{ id: string }>("POST", `/drives/${d}/root/children`, {
      name,
      folder: {},
      "@microsoft.graph.conflictBehavior": "fail",
    }))!.id;
  }
  job.state.setQuarantineFolder(driveId, id);
  return id;
}

async function removeSharingLinks(job: ScanJob, drive: DriveRef, item: DriveItem): Promise<number> {
  const base = `/drives/${encodeURIComponent(drive.id)}/items/${encodeURIComponent(item.id)}`;
  const perms = await job.graph.all<{ id: string; link?: { scope?: string; type?: string } }>(
    `${base}/permissions`,
  );
  const links = perms.filter((p) => p.link);
  for (const p of links) {
    await job.graph.send("DELETE", `${base}/permissions/${encodeURIComponent(p.id)}`);
  }
  if (links.length) {
    job.state.remediated({
      action: "remove_sharing",
      driveId: drive.id,
      itemId: item.id,
      name: item.name ?? item.id,
      detail: { links: links.length, scopes: [...new Set(links.map((l) => l.link?.scope ?? ""))] },
    });
  }
  return links.length;
}

async function quarantine(job: ScanJob, drive: DriveRef, item: DriveItem): Promise<void> {
  const folder = await quarantineFolderId(job, drive.id);
  const path = `/drives/${encodeURIComponent(drive.id)}/items/${encodeURIComponent(item.id)}`;
  const name = item.name ?? item.id;
  try {
    await job.graph.send("PATCH", path, { parentReference: { id: folder } });
  } catch (e) {
    // A file of the same name is already in quarantine: keep both.
    if (!(e instanceof GraphError && e.httpStatus === 409)) throw e;
    const dot = name.lastIndexOf(".");
    const renamed = dot > 0
      ? `${name.slice(0, dot)} (${item.id.slice(-8)})${name.slice(dot)}`
      : `${name} (${item.id.slice(-8)})`;
    await job.graph.send("PATCH", path, { parentReference: { id: folder }, name: renamed });
  }
  job.state.remediated({
    action: "quarantine",
    driveId: drive.id,
    itemId: item.id,
    name,
    detail: {
      folder: job.remediation.quarantineFolder,
      fromPath: item.parentReference?.path ?? null,
    },
  });
}

/** Runs the tenant's remediation for a blocked file. */
async function remediate(
  job: ScanJob,
  drive: DriveRef,
  item: DriveItem,
): Promise<{ outcome: FindingOutcome; note: string }> {
  const r = job.remediation;
  const notes: string[] = [];
  let unshared = 0, quarantined = false, refused = false, failed = false;
  if (r.removeSharingLinks) {
    if (!job.enabled.has("remove_sharing")) {
      refused = true;
      notes.push(`sharing links kept: ${job.missingFor("remove_sharing")}`);
    } else {
      try {
        unshared = await removeSharingLinks(job, drive, item);
        notes.push(`removed ${unshared} sharing link${unshared === 1 ? "" : "s"}`);
      } catch (e) {
        if (!(e instanceof GraphError)) throw e;
        failed = true;
        notes.push(`removing sharing links failed: ${e.message}`);
      }
    }
  }
  if (r.quarantine) {
    if (!job.enabled.has("quarantine")) {
      refused = true;
      notes.push(`not quarantined: ${job.missingFor("quarantine")}`);
    } else {
      try {
        await quarantine(job, drive, item);
        quarantined = true;
        notes.push(`quarantined in "${r.quarantineFolder}"`);
      } catch (e) {
        if (!(e instanceof GraphError)) throw e;
        failed = true;
        notes.push(`quarantine failed: ${e.message}`);
      }
    }
  }
  const outcome: FindingOutcome = failed
    ? "remediation_failed"
    : quarantined && unshared
    ? "quarantined_unshared"
    : quarantined
    ? "quarantined"
    : unshared
    ? "unshared"
    : refused
    ? "not_permitted"
    : "reported";
  return { outcome, note: notes.join("; ") || "reported (no remediation configured)" };
}

async function scanItem(job: ScanJob, drive: DriveRef, item: DriveItem): Promise<void> {
  const tag = item.cTag ?? item.eTag ?? "";
  const name = item.name ?? item.id;
  const size = item.size ?? 0;
  if (size > MAX_SCAN_BYTES) {
    job.state.commitItem(drive, { id: item.id, tag, verdict: "too_large" }, null);
    return;
  }
  const bytes = await job.graph.download(drive.id, item.id, MAX_SCAN_BYTES);
  if (!bytes) {
    job.state.commitItem(drive, { id: item.id, tag, verdict: "too_large" }, null);
    return;
  }
  const owner = item.createdBy?.user?.email ?? drive.owner;
  const verdict = await job.inspector.inspect(bytes, name, owner);
  if (verdict.action === "allow") {
    job.state.commitItem(drive, { id: item.id, tag, verdict: "allow" }, null);
    return;
  }
  const done = verdict.action === "block"
    ? await remediate(job, drive, item)
    : { outcome: "reported" as const, note: "reported (the rule notifies only)" };
  job.state.commitItem(drive, { id: item.id, tag, verdict: verdict.action }, {
    driveId: drive.id,
    itemId: item.id,
    name,
    size: bytes.length,
    owner,
    webUrl: item.webUrl ?? null,
    verdict,
    ...done,
  });
}

/** Works through one page of a delta query. */
async function scanPage(job: ScanJob, drive: DriveRef, items: DriveItem[]): Promise<void> {
  const todo: DriveItem[] = [];
  let seen = 0;
  for (const it of items) {
    if (it.deleted) {
      job.state.forgetItem(drive.id, it.id);
      continue;
    }
    if (!it.file) continue;
    seen++;
    // A file moved into quarantine keeps its content tag, so it is not read again.
    const tag = it.cTag ?? it.eTag ?? "";
    if (tag && job.state.itemTag(drive.id, it.id) === tag) continue;
    todo.push(it);
  }
  job.state.seen(seen);
  await pool(todo, SCAN_CONCURRENCY, (it) => scanItem(job, drive, it));
}

/** Scans one drive from its cursor to a fresh delta link. */
export async function scanDrive(job: ScanJob, drive: DriveRef): Promise<void> {
  const cur = job.state.cursor(drive.id);
  let link = cur?.link ?? job.graph.resolve(`/drives/${encodeURIComponent(drive.id)}/root/delta`);
  if (!cur) job.state.beginDrive(drive, link);
  for (let pages = 1;; pages++) {
    job.signal?.throwIfAborted();
    const page = await job.graph.page<DriveItem>(link);
    await scanPage(job, drive, page.value);
    if (page.nextLink) {
      job.state.pageDone(drive, page.nextLink, "next");
      link = page.nextLink;
      continue;
    }
    if (!page.deltaLink) {
      throw new GraphError(
        200,
        null,
        `Graph ended the delta query of drive ${drive.id} without a deltaLink`,
      );
    }
    job.state.pageDone(drive, page.deltaLink, "delta");
    log.debug("drive scanned", { drive: drive.id, pages });
    return;
  }
}

/** Scans every drive of the tenant. */
export async function scanTenant(job: ScanJob): Promise<{ drives: number }> {
  if (!job.enabled.has("scanning")) {
    throw new InputError("scanning_disabled", `Cannot scan: ${job.missingFor("scanning")}`, 409);
  }
  const drives = await listDrives(job.graph, job.app);
  for (const d of drives) await scanDrive(job, d);
  return { drives: drives.length };
}
