/**
 * "Repair app": re-checks everything the connector put on this host and
 * puts back what is missing, reporting each check. The data plane checks
 * what it installed (TUN device, routes, nftables table, resolv.conf:
 * ConnectorTunnel.repair); this module adds what the role itself holds — the
 * pinned edge CA it trusts and the state database — and puts the pieces in
 * one report for the console and the local API.
 *
 * A check never throws: a failure is a "failed" row that says why, so one
 * broken piece does not hide the state of the others.
 */
import { X509Certificate } from "node:crypto";
import { logger } from "../log.ts";
import type { ConnectorState } from "../store/connector_state.ts";
import { caFingerprint, singleCertDer } from "./ca_pin.ts";
import {
  fillTemplate,
  REPAIR_MESSAGES,
  type RepairParams,
  type RepairReason,
} from "./repair_messages.ts";

const log = logger("connector.repair");

/** What a repair looks at, in the order it does. */
export type RepairCheckId =
  | "tun"
  | "routes"
  | "nftables"
  | "resolv_conf"
  | "ca_trust"
  | "state_db";

/** ok: as it should be; repaired: was wrong and is fixed; failed: still wrong; skipped: not in use. */
export type RepairStatus = "ok" | "repaired" | "failed" | "skipped";

/** One row of a repair report. */
export interface RepairCheck {
  id: RepairCheckId;
  status: RepairStatus;
  /** What was found and what was done, as a code (repair_messages.ts) … */
  reason: RepairReason;
  /** … its parameters … */
  params: RepairParams;
  /** … and as an English sentence. */
  detail: string;
}

/** The result of one "Repair app" run. */
export interface RepairReport {
  at: number;
  checks: RepairCheck[];
  /** Counts by status. */
  repaired: number;
  failed: number;
}

/** A report row; its sentence is rendered from the reason's template. */
export function check(
  id: RepairCheckId,
  status: RepairStatus,
  reason: RepairReason,
  params: RepairParams = {},
): RepairCheck {
  return { id, status, reason, params, detail: fillTemplate(REPAIR_MESSAGES[reason], params) };
}

/** What a repair needs: the data plane's own checks and the role's store. */
export interface RepairDeps {
  tunnel: { repair(): Promise<RepairCheck[]> };
  store: Pick<ConnectorState, "getEnrollment" | "integrityCheck" | "reindex">;
  now?: () => number;
}

/** Runs every check (and repair) and returns the report; also logs what changed. */
export async function repairConnector(d: RepairDeps): Promise<RepairReport> {
  const now = d.now ?? Date.now;
  let checks: RepairCheck[];
  try {
    checks = await d.tunnel.repair();
  } catch (e) {
    checks = [check("tun", "failed", "check_failed", { error: (e as Error).message })];
  }
  checks.push(await caTrustCheck(d.store, now()));
  checks.push(stateDbCheck(d.store));
  for (const c of checks) {
    if (c.status === "repaired") log.warn(`Repaired ${c.id}`, { detail: c.detail });
    else if (c.status === "failed") log.error(`Cannot repair ${c.id}`, { detail: c.detail });
  }
  const report: RepairReport = {
    at: now(),
    checks,
    repaired: checks.filter((c) => c.status === "repaired").length,
    failed: checks.filter((c) => c.status === "failed").length,
  };
  log.info("Repair finished", { repaired: report.repaired, failed: report.failed });
  return report;
}

/**
 * The pinned edge CA: one well-formed certificate, within its validity. It
 * cannot be repaired here — a new pin needs a new enrolment key, which only
 * the administrator can give — so a bad pin is reported as failed.
 */
async function caTrustCheck(
  store: Pick<ConnectorState, "getEnrollment">,
  now: number,
): Promise<RepairCheck> {
  const e = store.getEnrollment();
  if (!e) return check("ca_trust", "skipped", "ca_not_enrolled");
  try {
    singleCertDer(e.caPem);
    const cert = new X509Certificate(e.caPem);
    const from = Date.parse(cert.validFrom), to = Date.parse(cert.validTo);
    const pin = (await caFingerprint(e.caPem)).slice(0, 16);
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    if (now > to) return check("ca_trust", "failed", "ca_expired", { pin, date: day(to) });
    if (now < from) return check("ca_trust", "failed", "ca_not_yet", { pin, date: day(from) });
    return check("ca_trust", "ok", "ca_ok", { pin, date: day(to) });
  } catch (err) {
    return check("ca_trust", "failed", "ca_unreadable", { error: (err as Error).message });
  }
}

/** `PRAGMA integrity_check`; on a problem, REINDEX (what SQLite can rebuild) and look again. */
function stateDbCheck(store: Pick<ConnectorState, "integrityCheck" | "reindex">): RepairCheck {
  try {
    const first = store.integrityCheck();
    if (first.length === 0) return check("state_db", "ok", "db_ok");
    store.reindex();
    const again = store.integrityCheck();
    if (again.length === 0) {
      return check("state_db", "repaired", "db_reindexed", {
        problems: first.slice(0, 3).join("; "),
      });
    }
    return check("state_db", "failed", "db_damaged", { problems: again.slice(0, 3).join("; ") });
  } catch (e) {
    return check("state_db", "failed", "db_check_failed", { error: (e as Error).message });
  }
}

/**
 * Runs repairs one at a time and keeps the last report, so the console can
 * show what a repair started from the API (or from the console) found.
 */
export class Repairer {
  #last: RepairReport | null = null;
  #running: Promise<RepairReport> | null = null;

  constructor(readonly deps: RepairDeps) {}

  /** The last finished report, or null before the first repair. */
  get last(): RepairReport | null {
    return this.#last;
  }

  /** Runs a repair, or joins the one in progress. */
  run(): Promise<RepairReport> {
    this.#running ??= repairConnector(this.deps).then((r) => (this.#last = r)).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }
}
