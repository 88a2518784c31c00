/**
 * The edge's DLP service: dictionaries (with EDM uploads hashed on arrival,
 * the CSV never stored), rules, the compiled policy, the bundle each device
 * receives, and incidents — from connectors (signed with the device key),
 * from the inline proxy, and from the console's test tool.
 *
 * Changes bump a DLP revision of their own (policy bundles are untouched)
 * and publish `dlp_policy_updated`; connectors fetch their DLP bundle with
 * an ETag. Every change and every upload is in the audit log, with counts,
 * never content.
 */
import { z } from "zod";
import type { Clock } from "../clock.ts";
import { InputError, NotFoundError } from "../errors.ts";
import { randomId, sha256Hex } from "../identity/secrets.ts";
import type { Notifier } from "../notify/mod.ts";
import type { DeviceRecord, DlpIncidentRecord, IncidentFilter, Store } from "../store/mod.ts";
import {
  appliesTo,
  buildEdmIndex,
  describeMatches,
  DictionaryDef,
  type DictionarySpec,
  type DlpBundle,
  DlpPolicy,
  DlpRule,
  EdmIndex,
  looksUnredacted,
  Scanner,
} from "../dlp/mod.ts";
import { IncidentReport, incidentSigningMessage } from "../dlp/report.ts";
import { openSignedPayload } from "./signed_payload.ts";

const REVISION_KEY = "dlp_revision";

/** Incidents kept (oldest pruned beyond). */
export const INCIDENT_KEEP = 50_000;

/** Largest EDM CSV accepted (16 MiB). */
export const EDM_UPLOAD_LIMIT = 16 * 1024 * 1024;

/** A dictionary as the admin API shows it (EDM: a summary of the index, never hashes or key). */
export interface DictionaryView {
  def: DictionaryDef;
  edm: { rows: number; columns: string[]; uploadedAt: number } | null;
}

/** How a report reached the edge, with what the edge knows of the reporter. */
export interface InlineIncident {
  source: "inline" | "console" | "saas";
  hostname: string;
  deviceId: string | null;
  user: string | null;
  channel: string;
  fileName: string;
  fileSha256: string;
  fileSize: number;
  fileType: string;
  rule: string | null;
  action: "notify" | "block";
  outcome: string;
  matches: DlpIncidentRecord["matches"];
}

/** Samples the edge accepts: ours, redacted; anything that could be a raw value is withheld. */
function cleanSamples(samples: string[]): string[] {
  return samples.map((s) => looksUnredacted(s) ? "[withheld]" : s.slice(0, 80));
}

/** DLP policy storage, compilation, distribution and incidents. */
export class DlpService {
  #policy: { revision: number; policy: DlpPolicy } | null = null;
  #bundles = new Map<string, DlpBundle>();
  #bundleRevision = -1;

  constructor(private store: Store, private clock: Clock, private notifier: Notifier) {}

  /** The DLP revision (bumped by every change). */
  revision(): number {
    return Number(this.store.settings.get(REVISION_KEY) ?? "0");
  }

  /** Every dictionary, without EDM hashes or keys. */
  dictionaries(): DictionaryView[] {
    return this.store.dlpDictionaries.list(true).map((r) => {
      const def = DictionaryDef.parse(r.def);
      const idx = r.edmIndex as { rows?: number; columns?: string[] } | null;
      return {
        def,
        edm: idx && r.edmUploadedAt !== null
          ? { rows: idx.rows ?? 0, columns: idx.columns ?? [], uploadedAt: r.edmUploadedAt }
          : null,
      };
    });
  }

  /** The rules in order. */
  rules(): DlpRule[] {
    return this.store.dlpRules.list().map((r) => DlpRule.parse(r));
  }

  #specs(): DictionarySpec[] {
    return this.store.dlpDictionaries.list(true).map((r) => {
      const def = DictionaryDef.parse(r.def);
      const edm = r.edmIndex && r.edmKey
        ? EdmIndex.parse({ ...(r.edmIndex as object), key: r.edmKey })
        : undefined;
      return { def, edm };
    });
  }

  /** The compiled policy of the current revision. */
  policy(): DlpPolicy {
    const rev = this.revision();
    if (this.#policy?.revision !== rev) {
      this.#policy = {
        revision: rev,
        policy: new DlpPolicy(this.rules(), this.#specs(), `r${rev}`),
      };
    }
    return this.#policy.policy;
  }

  #commit(
    actor: string,
    action: string,
    target: string,
    detail: Record<string, unknown>,
    fn: () => void,
  ) {
    const now = this.clock.now();
    const revision = this.store.transaction(() => {
      fn();
      // Compile inside the transaction: a change that leaves the policy
      // uncompilable (a rule naming a dictionary that is gone) rolls back.
      new DlpPolicy(this.rules(), this.#specs());
      const next = this.revision() + 1;
      this.store.settings.set(REVISION_KEY, String(next));
      this.store.audit.insert({
        at: now,
        actor,
        action,
        target,
        detail: { ...detail, revision: next },
      });
      return next;
    });
    this.#policy = null;
    this.notifier.publish({ kind: "dlp_policy_updated", revision, by: actor });
  }

  /** Creates or replaces a dictionary definition (an EDM index already uploaded is kept). */
  putDictionary(name: string, body: unknown, actor: string): DictionaryView {
    const def = DictionaryDef.parse({ ...(body as object), name });
    const existing = this.store.dlpDictionaries.get(name);
    if (existing && DictionaryDef.parse(existing.def).kind !== def.kind && existing.edmIndex) {
      throw new InputError(
        "dictionary_kind_change",
        `Cannot change dictionary "${name}" from edm to ${def.kind}: delete it and create it again`,
        409,
      );
    }
    // Refuse a pattern RE2 cannot compile now, with the sentence, not at scan time.
    if (def.kind !== "edm") new Scanner([{ def }]);
    this.#commit(actor, "dlp.dictionary.put", name, { kind: def.kind }, () => {
      this.store.dlpDictionaries.upsert(name, def, this.clock.now());
    });
    return this.dictionaries().find((d) => d.def.name === name)!;
  }

  /** Hashes an uploaded CSV into the dictionary's EDM index; the CSV itself is dropped here. */
  uploadEdm(name: string, csv: string, actor: string): DictionaryView {
    const rec = this.store.dlpDictionaries.get(name);
    if (!rec) {
      throw new NotFoundError(
        "dictionary_not_found",
        `Cannot find DLP dictionary "${name.slice(0, 64)}"`,
      );
    }
    if (DictionaryDef.parse(rec.def).kind !== "edm") {
      throw new InputError(
        "not_edm",
        `Cannot upload a CSV to dictionary "${name}": it is not an exact-data-match (edm) dictionary`,
        409,
      );
    }
    const { key, ...index } = buildEdmIndex(csv);
    this.#commit(
      actor,
      "dlp.edm.upload",
      name,
      { rows: index.rows, columns: index.columns.length },
      () => {
        this.store.dlpDictionaries.setEdm(name, index, key, this.clock.now());
      },
    );
    return this.dictionaries().find((d) => d.def.name === name)!;
  }

  /** Deletes a dictionary no rule uses. */
  deleteDictionary(name: string, actor: string): void {
    const users = this.rules().filter((r) => r.dictionaries.includes(name)).map((r) => r.name);
    if (users.length) {
      throw new InputError(
        "dictionary_in_use",
        `Cannot delete dictionary "${name}": rule "${users[0]}" uses it`,
        409,
      );
    }
    if (!this.store.dlpDictionaries.get(name)) {
      throw new NotFoundError(
        "dictionary_not_found",
        `Cannot find DLP dictionary "${name.slice(0, 64)}"`,
      );
    }
    this.#commit(actor, "dlp.dictionary.delete", name, {}, () => {
      this.store.dlpDictionaries.delete(name);
    });
  }

  /** Validates and replaces every rule. */
  replaceRules(body: unknown, actor: string): DlpRule[] {
    const rules = z.array(DlpRule).max(500).parse(body);
    const seen = new Set<string>();
    rules.forEach((r, i) => {
      if (seen.has(r.name)) {
        throw new InputError(
          "invalid_request",
          `Invalid request: rules[${i}].name: duplicate name "${r.name}"`,
        );
      }
      seen.add(r.name);
    });
    this.#commit(actor, "dlp.rules.replace", "dlp_rules", { count: rules.length }, () => {
      this.store.dlpRules.replace(rules.map((r) => ({ name: r.name, body: r })), this.clock.now());
    });
    return rules;
  }

  /**
   * The DLP bundle of a device: the rules that apply to its user and group,
   * and the dictionaries they use (EDM with index and key, which endpoint
   * matching needs). Cached per revision and subject.
   */
  bundleFor(device: DeviceRecord): DlpBundle {
    const rev = this.revision();
    if (rev !== this.#bundleRevision) {
      this.#bundles.clear();
      this.#bundleRevision = rev;
    }
    const subject = { user: device.user, groups: device.group ? [device.group] : [] };
    const key = JSON.stringify(subject);
    const hit = this.#bundles.get(key);
    if (hit) return hit;
    const rules = this.rules().filter((r) => r.enabled && appliesTo(r, subject));
    const used = new Set(rules.flatMap((r) => r.dictionaries));
    const dictionaries = this.#specs().filter((s) => used.has(s.def.name))
      .map((s) => (s.edm ? { def: s.def, edm: s.edm } : { def: s.def }));
    const content = { subject, rules, dictionaries };
    const bundle: DlpBundle = {
      version: sha256Hex(JSON.stringify(content)).slice(0, 32),
      ...content,
    };
    this.#bundles.set(key, bundle);
    return bundle;
  }

  /**
   * Verifies, checks and stores a connector's signed report. Throws an
   * InputError (4xx) for a bad signature, a report of another device, or a
   * payload that does not parse; stores nothing then. A report sent again
   * is acknowledged without a second incident.
   */
  acceptReport(
    device: DeviceRecord,
    payload: string,
    signature: string,
  ): { id: string; duplicate: boolean } {
    const rep = openSignedPayload(
      device,
      payload,
      signature,
      incidentSigningMessage(payload),
      IncidentReport,
      {
        noun: "DLP incident",
        signatureCode: "incident_signature_invalid",
        mismatchCode: "incident_device_mismatch",
      },
    );
    const now = this.clock.now();
    const id = randomId("dlp");
    const rec: DlpIncidentRecord = {
      id,
      reportId: `${device.id}:${rep.reportId}`,
      source: "endpoint",
      deviceId: device.id,
      hostname: device.hostname,
      user: device.user,
      channel: rep.channel,
      fileName: rep.fileName,
      fileSha256: rep.fileSha256,
      fileSize: rep.fileSize,
      fileType: rep.fileType,
      rule: rep.rule,
      action: rep.action,
      outcome: rep.outcome,
      matches: rep.matches.map((m) => ({ ...m, samples: cleanSamples(m.samples) })),
      occurredAt: Math.min(Date.parse(rep.occurredAt), now),
      receivedAt: now,
    };
    const stored = this.#store(rec);
    if (!stored) {
      const existing = this.store.dlpIncidents.list({ deviceId: device.id, limit: 1000 })
        .find((x) => x.reportId === rec.reportId);
      return { id: existing?.id ?? id, duplicate: true };
    }
    return { id, duplicate: false };
  }

  /** Stores an incident seen at the edge itself (the inline proxy, the console's test, a SaaS scan). */
  recordIncident(i: InlineIncident): string {
    const now = this.clock.now();
    const id = randomId("dlp");
    this.#store({
      ...i,
      id,
      reportId: `${i.source}:${id}`,
      matches: i.matches.map((m) => ({ ...m, samples: cleanSamples(m.samples) })),
      occurredAt: now,
      receivedAt: now,
    });
    return id;
  }

  #store(rec: DlpIncidentRecord): boolean {
    const stored = this.store.transaction(() => {
      if (!this.store.dlpIncidents.insert(rec)) return false;
      this.store.audit.insert({
        at: rec.receivedAt,
        actor: rec.deviceId ? `device:${rec.deviceId}` : rec.source,
        action: "dlp.incident",
        target: rec.id,
        detail: { channel: rec.channel, action: rec.action, rule: rec.rule },
      });
      if (this.store.dlpIncidents.count() > INCIDENT_KEEP) {
        this.store.dlpIncidents.prune(INCIDENT_KEEP);
      }
      return true;
    });
    if (stored) {
      this.notifier.publish({
        kind: "dlp_incident",
        incidentId: rec.id,
        hostname: rec.hostname,
        channel: rec.channel,
        action: rec.action,
        rule: rec.rule ?? "",
        fileName: rec.fileName.slice(0, 200),
        summary: describeMatches(
          rec.matches.map((m) => ({ ...m, kind: m.kind as never, triggered: true })),
        ),
      });
    }
    return stored;
  }

  /** Incidents, newest first. */
  incidents(f: IncidentFilter): DlpIncidentRecord[] {
    return this.store.dlpIncidents.list(f);
  }

  /** One incident. */
  incident(id: string): DlpIncidentRecord {
    const i = this.store.dlpIncidents.get(id);
    if (!i) {
      throw new NotFoundError(
        "incident_not_found",
        `Cannot find DLP incident "${id.slice(0, 64)}"`,
      );
    }
    return i;
  }
}
