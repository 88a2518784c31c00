import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str, strOrNull } from "./row.ts";

/** One data-at-rest scan of a tenant. */
export interface SaasScanRecord {
  id: string;
  tenantRef: string;
  state: "running" | "completed" | "failed";
  startedBy: string;
  startedAt: number;
  finishedAt: number | null;
  drives: number;
  pages: number;
  filesSeen: number;
  filesScanned: number;
  findings: number;
  remediations: number;
  throttled: number;
  error: string | null;
}

/** The counters a scan adds to as it goes. */
export type ScanCounter =
  | "drives"
  | "pages"
  | "files_seen"
  | "files_scanned"
  | "findings"
  | "remediations"
  | "throttled";

function toScan(r: Row): SaasScanRecord {
  const state = str(r.state);
  return {
    id: str(r.id),
    tenantRef: str(r.tenant_ref),
    state: state === "completed" || state === "failed" ? state : "running",
    startedBy: str(r.started_by),
    startedAt: num(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    drives: num(r.drives),
    pages: num(r.pages),
    filesSeen: num(r.files_seen),
    filesScanned: num(r.files_scanned),
    findings: num(r.findings),
    remediations: num(r.remediations),
    throttled: num(r.throttled),
    error: strOrNull(r.error),
  };
}

const COUNTERS = new Set<ScanCounter>([
  "drives",
  "pages",
  "files_seen",
  "files_scanned",
  "findings",
  "remediations",
  "throttled",
]);

/** Scans, newest first per tenant. */
export class SaasScansRepo {
  constructor(private db: SqlDatabase) {}
  /** Starts a scan record. */
  insert(s: { id: string; tenantRef: string; startedBy: string; startedAt: number }): void {
    this.db.run(
      "INSERT INTO saas_scans (id, tenant_ref, state, started_by, started_at) VALUES (?, ?, 'running', ?, ?)",
      s.id,
      s.tenantRef,
      s.startedBy,
      s.startedAt,
    );
  }
  /** One scan. */
  get(id: string): SaasScanRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM saas_scans WHERE id = ?", id);
    return r && toScan(r);
  }
  /** The newest scans of a tenant. */
  forTenant(tenantRef: string, limit = 10): SaasScanRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM saas_scans WHERE tenant_ref = ? ORDER BY started_at DESC, id DESC LIMIT ?",
      tenantRef,
      limit,
    ).map(toScan);
  }
  /** Scans still marked running (an edge that stopped mid-scan resumes them). */
  running(): SaasScanRecord[] {
    return this.db.all<Row>("SELECT * FROM saas_scans WHERE state = 'running' ORDER BY started_at")
      .map(toScan);
  }
  /** Adds `n` to a counter. */
  add(id: string, counter: ScanCounter, n = 1): void {
    if (!COUNTERS.has(counter)) throw new RangeError(`Unknown scan counter "${counter}"`);
    this.db.run(`UPDATE saas_scans SET ${counter} = ${counter} + ? WHERE id = ?`, n, id);
  }
  /** Sets a counter. */
  set(id: string, counter: ScanCounter, n: number): void {
    if (!COUNTERS.has(counter)) throw new RangeError(`Unknown scan counter "${counter}"`);
    this.db.run(`UPDATE saas_scans SET ${counter} = ? WHERE id = ?`, n, id);
  }
  /** Ends a scan. */
  finish(id: string, state: "completed" | "failed", at: number, error: string | null): void {
    this.db.run(
      "UPDATE saas_scans SET state = ?, finished_at = ?, error = ? WHERE id = ?",
      state,
      at,
      error,
      id,
    );
  }
}
