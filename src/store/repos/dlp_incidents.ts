import type { SqlDatabase, SqlValue } from "../sql.ts";
import { num, type Row, str, strOrNull } from "./row.ts";

/** A stored DLP incident (matches carry redacted samples only). */
export interface DlpIncidentRecord {
  id: string;
  reportId: string;
  source: "endpoint" | "inline" | "console" | "saas";
  deviceId: string | null;
  hostname: string;
  user: string | null;
  channel: string;
  fileName: string;
  fileSha256: string;
  fileSize: number;
  fileType: string;
  rule: string | null;
  action: string;
  outcome: string;
  matches: { dictionary: string; kind: string; count: number; samples: string[] }[];
  occurredAt: number;
  receivedAt: number;
}

/** Filters of the incident list. */
export interface IncidentFilter {
  beforeReceivedAt?: number;
  channel?: string;
  action?: string;
  deviceId?: string;
  /** Where it was seen: a device's host name, or a SaaS tenant's name. */
  hostname?: string;
  /** Who reported it. */
  source?: DlpIncidentRecord["source"];
  limit: number;
}

function toIncident(r: Row): DlpIncidentRecord {
  return {
    id: str(r.id),
    reportId: str(r.report_id),
    source: str(r.source) as DlpIncidentRecord["source"],
    deviceId: strOrNull(r.device_id),
    hostname: str(r.hostname),
    user: strOrNull(r.user_name),
    channel: str(r.channel),
    fileName: str(r.file_name),
    fileSha256: str(r.file_sha256),
    fileSize: num(r.file_size),
    fileType: str(r.file_type),
    rule: strOrNull(r.rule),
    action: str(r.action),
    outcome: str(r.outcome),
    matches: JSON.parse(str(r.matches)),
    occurredAt: num(r.occurred_at),
    receivedAt: num(r.received_at),
  };
}

/** DLP incidents, newest first. */
export class DlpIncidentsRepo {
  constructor(private db: SqlDatabase) {}
  /** Stores an incident; false when one with the same report id exists already. */
  insert(i: DlpIncidentRecord): boolean {
    return this.db.run(
      "INSERT INTO dlp_incidents (id, report_id, source, device_id, hostname, user_name, channel, file_name, file_sha256, file_size, file_type, rule, action, outcome, matches, occurred_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      i.id,
      i.reportId,
      i.source,
      i.deviceId,
      i.hostname,
      i.user,
      i.channel,
      i.fileName,
      i.fileSha256,
      i.fileSize,
      i.fileType,
      i.rule,
      i.action,
      i.outcome,
      JSON.stringify(i.matches),
      i.occurredAt,
      i.receivedAt,
    ).changes === 1;
  }
  /** One incident by id. */
  get(id: string): DlpIncidentRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM dlp_incidents WHERE id = ?", id);
    return r && toIncident(r);
  }
  /** Incidents matching `f`, newest first. */
  list(f: IncidentFilter): DlpIncidentRecord[] {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.beforeReceivedAt !== undefined) {
      where.push("received_at < ?");
      params.push(f.beforeReceivedAt);
    }
    if (f.channel) {
      where.push("channel = ?");
      params.push(f.channel);
    }
    if (f.action) {
      where.push("action = ?");
      params.push(f.action);
    }
    if (f.deviceId) {
      where.push("device_id = ?");
      params.push(f.deviceId);
    }
    if (f.hostname) {
      where.push("hostname = ?");
      params.push(f.hostname);
    }
    if (f.source) {
      where.push("source = ?");
      params.push(f.source);
    }
    params.push(f.limit);
    return this.db.all<Row>(
      `SELECT * FROM dlp_incidents ${
        where.length ? `WHERE ${where.join(" AND ")}` : ""
      } ORDER BY received_at DESC, id DESC LIMIT ?`,
      ...params,
    ).map(toIncident);
  }
  /** Number of incidents. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM dlp_incidents")!.n);
  }
  /** Deletes all but the newest `keep` incidents; returns how many went. */
  prune(keep: number): number {
    return this.db.run(
      "DELETE FROM dlp_incidents WHERE id NOT IN (SELECT id FROM dlp_incidents ORDER BY received_at DESC, id DESC LIMIT ?)",
      keep,
    ).changes;
  }
}
