/**
 * Connector releases at the edge: uploads (the bundle is taken apart and the
 * program checked against its manifest; its bytes go to the store in chunks
 * of 1 MiB, the manifest beside them), update rules, the offer each device
 * gets (src/policy/rollout.ts), devices' reports and the dashboard's
 * versions by rule.
 *
 * The edge holds no release key and verifies no signature: connectors pin
 * the operator's key and verify every release themselves, so this service is
 * only a distribution point. The bytes live in the shared store, so on a
 * fleet sharing one database every edge serves every release, reading it a
 * chunk at a time and checking its SHA-256 as it goes (a program altered in
 * the database is cut off, never served whole). Releases uploaded before
 * the store held the bytes are still served from <dataDir>/releases/<sha256>
 * by the edge that has that file.
 */
import type { Clock } from "../clock.ts";
import { InputError, NotFoundError } from "../errors.ts";
import { parseBundle } from "../fleet/release.ts";
import { parseRollback } from "../fleet/rollback_auth.ts";
import { createHash } from "node:crypto";
import { randomId } from "../identity/secrets.ts";
import { logger } from "../log.ts";
import type { Notifier } from "../notify/mod.ts";
import {
  assignRollout,
  offerFor,
  type RolloutAssignment,
  type RolloutOffer,
  type UpdateRule,
} from "../policy/rollout.ts";
import type {
  DeviceRecord,
  ReleaseRecord,
  Store,
  UpdateReportRecord,
  UpdateRuleRecord,
} from "../store/mod.ts";
import { compareVersions } from "../version.ts";
import { subjectFor } from "./subjects.ts";

const log = logger("edge.releases");

/** A release as the admin API lists it. */
export interface ReleaseView extends Omit<ReleaseRecord, "signedManifest"> {
  /** The program's bytes are all there (this edge can serve it). */
  available: boolean;
  /** Names of the rules that target it. */
  rules: string[];
}

/** A rule's settings as the admin gives them. */
export interface RuleInput {
  name: string;
  group: string | null;
  percent: number;
  targetVersion: string;
  paused: boolean;
  rollback: boolean;
  /** The text of a `portcullis release rollback` file: required when `rollback`. */
  rollbackAuthorisation?: string | null;
  position?: number;
}

/** What the edge answers a device's update check. */
export interface UpdateOffer extends RolloutOffer {
  sha256: string;
  size: number;
  /** The signed manifest, exactly as the release key signed it. */
  signedManifest: string;
}

/** One rule's row on the dashboard. */
export interface RuleOverview {
  rule: UpdateRuleRecord | null;
  devices: number;
  selected: number;
  /** Selected devices already reporting the target version. */
  onTarget: number;
  byVersion: { version: string; devices: number }[];
}

/** Largest bundle accepted (256 MiB: a `deno compile`d program is about 100). */
export const RELEASE_LIMIT = 256 * 1024 * 1024;

/** Size of the program chunks in the store. */
export const RELEASE_CHUNK = 1024 * 1024;

/** A program being served: its size and its bytes, checked against the SHA-256 as they go. */
export interface ProgramStream {
  size: number;
  stream: ReadableStream<Uint8Array>;
}

/** Releases, rules, offers and reports. */
export class ReleaseService {
  #dir: string;
  constructor(
    private store: Store,
    private clock: Clock,
    private notifier: Notifier,
    dataDir: string,
  ) {
    this.#dir = `${dataDir}/releases`;
  }

  /** Where releases uploaded before migration 17 keep their bytes. */
  #legacyPath(sha256: string): string {
    return `${this.#dir}/${sha256}`;
  }

  #hasLegacyFile(sha256: string): boolean {
    try {
      return Deno.statSync(this.#legacyPath(sha256)).isFile;
    } catch {
      return false;
    }
  }

  #chunksComplete(r: ReleaseRecord): boolean {
    return this.store.releases.chunkCount(r.sha256) === Math.ceil(r.size / RELEASE_CHUNK);
  }

  #hasBytes(r: ReleaseRecord): boolean {
    return this.#chunksComplete(r) || this.#hasLegacyFile(r.sha256);
  }

  /** Stores an uploaded bundle; InputError when malformed, 409 when the version exists. */
  upload(bytes: Uint8Array, actor: string): ReleaseView {
    const { signed, manifest, program } = parseBundle(bytes);
    if (this.store.releases.get(manifest.version)) {
      throw new InputError(
        "release_exists",
        `Release ${manifest.version} exists already; delete it first to replace it`,
        409,
      );
    }
    const rec: ReleaseRecord = {
      version: manifest.version,
      sha256: manifest.sha256,
      size: manifest.size,
      keyId: manifest.keyId,
      signedManifest: JSON.stringify(signed),
      uploadedAt: this.clock.now(),
      uploadedBy: actor,
    };
    // One transaction: the release appears with all its chunks or not at all.
    this.store.transaction(() => {
      for (let seq = 0; seq * RELEASE_CHUNK < program.length; seq++) {
        const part = program.subarray(seq * RELEASE_CHUNK, (seq + 1) * RELEASE_CHUNK);
        this.store.releases.putChunk(manifest.sha256, seq, part);
      }
      if (!this.store.releases.insert(rec)) {
        throw new InputError("release_exists", `Release ${manifest.version} exists already`, 409);
      }
    });
    this.store.audit.insert({
      at: rec.uploadedAt,
      actor,
      action: "release.upload",
      target: rec.version,
      detail: { sha256: rec.sha256, size: rec.size, keyId: rec.keyId },
    });
    log.info("Release uploaded", { version: rec.version, size: rec.size });
    return this.#view(rec);
  }

  #view(r: ReleaseRecord): ReleaseView {
    const { signedManifest: _, ...rest } = r;
    return {
      ...rest,
      available: this.#hasBytes(r),
      rules: this.store.releases.rulesTargeting(r.version).map((x) => x.name),
    };
  }

  /** Every release. */
  list(): ReleaseView[] {
    return this.store.releases.list().map((r) => this.#view(r));
  }

  /** Deletes a release no rule targets. */
  async delete(version: string, actor: string): Promise<void> {
    const r = this.store.releases.get(version);
    if (!r) throw new NotFoundError("release_not_found", `No release ${JSON.stringify(version)}`);
    const rules = this.store.releases.rulesTargeting(version);
    if (rules.length) {
      throw new InputError(
        "release_in_use",
        `Cannot delete release ${version}: rule "${rules[0].name}" targets it`,
        409,
      );
    }
    const shared = this.store.transaction(() => {
      this.store.releases.delete(version);
      const still = this.store.releases.list().some((x) => x.sha256 === r.sha256);
      if (!still) this.store.releases.deleteChunks(r.sha256);
      return still;
    });
    if (!shared) await Deno.remove(this.#legacyPath(r.sha256)).catch(() => {});
    this.store.audit.insert({
      at: this.clock.now(),
      actor,
      action: "release.delete",
      target: version,
      detail: {},
    });
  }

  /**
   * The program of a release, to serve: read from the store a chunk at a
   * time (or from a pre-migration file), hashed on the way, and cut off with
   * an error when what was read is not the manifest's SHA-256 and size.
   * Null when the release or its bytes are not there.
   */
  program(version: string): ProgramStream | null {
    const r = this.store.releases.get(version);
    if (!r) return null;
    let source: AsyncIterator<Uint8Array>;
    if (this.#chunksComplete(r)) {
      const releases = this.store.releases;
      source = (async function* () {
        for (let seq = 0; seq * RELEASE_CHUNK < r.size; seq++) {
          const part = releases.chunk(r.sha256, seq);
          if (!part) throw new Error(`chunk ${seq} is missing`);
          yield part;
        }
      })();
    } else if (this.#hasLegacyFile(r.sha256)) {
      const path = this.#legacyPath(r.sha256);
      source = (async function* () {
        using f = await Deno.open(path);
        const buf = new Uint8Array(RELEASE_CHUNK);
        for (let n; (n = await f.read(buf)) !== null;) yield buf.slice(0, n);
      })();
    } else {
      return null;
    }
    const hash = createHash("sha256");
    let got = 0;
    const fail = (why: string) => {
      void source.return?.(undefined);
      log.error("Release program is corrupt; not served", { version: r.version, why });
      return new Error(`Release ${r.version} is corrupt: ${why}`);
    };
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        let next;
        try {
          next = await source.next();
        } catch (e) {
          ctl.error(fail((e as Error).message));
          return;
        }
        if (next.done) {
          const digest = hash.digest("hex");
          if (got !== r.size) ctl.error(fail(`${got} bytes, the manifest says ${r.size}`));
          else if (digest !== r.sha256) ctl.error(fail(`SHA-256 ${digest}, not ${r.sha256}`));
          else ctl.close();
          return;
        }
        got += next.value.length;
        if (got > r.size) {
          ctl.error(fail(`more than the manifest's ${r.size} bytes`));
          return;
        }
        hash.update(next.value);
        // The last piece is held back until the digest is known, so a corrupt program never
        // reaches the client whole.
        if (got === r.size) {
          const digest = hash.digest("hex");
          if (digest !== r.sha256) {
            ctl.error(fail(`SHA-256 ${digest}, not ${r.sha256}`));
            return;
          }
          ctl.enqueue(next.value);
          ctl.close();
          await source.return?.(undefined);
          return;
        }
        ctl.enqueue(next.value);
      },
      async cancel() {
        await source.return?.(undefined);
      },
    });
    return { size: r.size, stream };
  }

  // ---- rules -----------------------------------------------------------------

  /** Every rule, by position. */
  rules(): UpdateRuleRecord[] {
    return this.store.releases.rules();
  }

  /**
   * Checks a rule before it is stored. `freshAuth`: the authorisation was
   * given in this request (its expiry is checked then; a stored one that
   * expires later only makes connectors refuse, and pausing stays possible).
   */
  #check(input: RuleInput, self: string | undefined, freshAuth: boolean): void {
    const target = this.store.releases.get(input.targetVersion);
    if (!target) {
      throw new InputError(
        "unknown_release",
        `Invalid targetVersion: no release ${JSON.stringify(input.targetVersion)} is uploaded`,
      );
    }
    const other = this.store.releases.ruleByName(input.name);
    if (other && other.id !== self) {
      throw new InputError("rule_exists", `A rule named "${input.name}" exists already`, 409);
    }
    this.#checkRollback(input, target, freshAuth);
  }

  /**
   * A rollback rule needs an authorisation for its target. The edge holds no
   * release key, so it cannot verify the signature (the connector does,
   * against its pinned key); it checks everything else it can: the shape,
   * the target, the key that signed the target release, and the expiry.
   */
  #checkRollback(input: RuleInput, target: ReleaseRecord, freshAuth: boolean): void {
    const text = input.rollbackAuthorisation ?? null;
    if (!input.rollback) {
      if (text) {
        throw new InputError(
          "rollback_authorisation_unused",
          "Invalid rollbackAuthorisation: the rule is not a rollback rule (set rollback to true)",
        );
      }
      return;
    }
    if (!text) {
      throw new InputError(
        "rollback_authorisation_required",
        `A rollback rule needs a rollback authorisation for ${input.targetVersion}: make one with "portcullis release rollback --to ${input.targetVersion}"`,
      );
    }
    const { authorisation: a } = parseRollback(text);
    if (a.to !== input.targetVersion) {
      throw new InputError(
        "rollback_authorisation_mismatch",
        `The rollback authorisation is for version ${a.to}, but the rule targets ${input.targetVersion}`,
      );
    }
    if (a.keyId !== target.keyId) {
      throw new InputError(
        "rollback_authorisation_mismatch",
        `The rollback authorisation is signed by key ${a.keyId}, but release ${target.version} by key ${target.keyId}`,
      );
    }
    if (freshAuth && !(Date.parse(a.expiresAt) > this.clock.now())) {
      throw new InputError(
        "rollback_authorisation_expired",
        `The rollback authorisation to ${a.to} expired at ${a.expiresAt}; sign a new one`,
      );
    }
  }

  /** Adds a rule at the end of the order. */
  createRule(input: RuleInput, actor: string): UpdateRuleRecord {
    this.#check(input, undefined, true);
    const now = this.clock.now();
    const rule = this.store.transaction(() => {
      const r = this.store.releases.insertRule({
        id: randomId("upd"),
        name: input.name,
        group: input.group,
        percent: input.percent,
        targetVersion: input.targetVersion,
        paused: input.paused,
        rollback: input.rollback,
        rollbackAuthorisation: input.rollback ? input.rollbackAuthorisation ?? null : null,
        createdAt: now,
        updatedAt: now,
      });
      if (input.position !== undefined && input.position !== r.position) {
        this.store.releases.updateRule({ ...r, position: input.position });
        return { ...r, position: input.position };
      }
      return r;
    });
    this.#audit(actor, "update_rule.create", rule);
    return rule;
  }

  /** Changes a rule (pause, percentage, target, rollback…). */
  updateRule(id: string, patch: Partial<RuleInput>, actor: string): UpdateRuleRecord {
    const r = this.store.releases.rule(id);
    if (!r) throw new NotFoundError("rule_not_found", `No update rule ${JSON.stringify(id)}`);
    const next: UpdateRuleRecord = {
      ...r,
      ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
      updatedAt: this.clock.now(),
    };
    // Turning rollback off drops the authorisation with it.
    if (patch.rollback === false && patch.rollbackAuthorisation === undefined) {
      next.rollbackAuthorisation = null;
    }
    this.#check(next, id, patch.rollbackAuthorisation !== undefined);
    this.store.releases.updateRule(next);
    this.#audit(actor, "update_rule.update", next);
    return next;
  }

  /** Deletes a rule. */
  deleteRule(id: string, actor: string): void {
    const r = this.store.releases.rule(id);
    if (!r) throw new NotFoundError("rule_not_found", `No update rule ${JSON.stringify(id)}`);
    this.store.releases.deleteRule(id);
    this.#audit(actor, "update_rule.delete", r);
  }

  #audit(actor: string, action: string, r: UpdateRuleRecord): void {
    this.store.audit.insert({
      at: this.clock.now(),
      actor,
      action,
      target: r.id,
      detail: {
        name: r.name,
        group: r.group,
        percent: r.percent,
        targetVersion: r.targetVersion,
        paused: r.paused,
        rollback: r.rollback,
        rollbackTo: r.rollbackAuthorisation ? r.targetVersion : null,
      },
    });
  }

  // ---- devices ---------------------------------------------------------------

  /** Every enrolled device's rule and selection. */
  assignments(devices: DeviceRecord[] = this.store.devices.list()): Map<string, RolloutAssignment> {
    const rules: UpdateRule[] = this.rules();
    return assignRollout(
      rules,
      devices.map((d) => ({
        id: d.id,
        groups: (subjectFor(this.store, d.id)?.groups ?? []).map((g) => g.name),
      })),
    );
  }

  /** The release device `deviceId` should run, or null (no rule, outside it, paused, not here). */
  offer(deviceId: string): UpdateOffer | null {
    const o = offerFor(this.assignments().get(deviceId));
    if (!o) return null;
    const r = this.store.releases.get(o.version);
    if (!r || !this.#hasBytes(r)) return null;
    return { ...o, sha256: r.sha256, size: r.size, signedManifest: r.signedManifest };
  }

  /** Records what a device says about an update; refusals and rollbacks raise a notification. */
  report(device: DeviceRecord, r: Omit<UpdateReportRecord, "deviceId" | "at">): void {
    const at = this.clock.now();
    this.store.releases.putReport({ ...r, deviceId: device.id, at });
    // The new version speaks for itself: the dashboard counts it at once.
    if (r.outcome === "installed") this.store.devices.setConnectorVersion(device.id, r.version);
    this.store.audit.insert({
      at,
      actor: `device:${device.id}`,
      action: `update.${r.outcome}`,
      target: r.version,
      detail: { hostname: device.hostname, reason: r.reason },
    });
    log.info("Connector update report", {
      deviceId: device.id,
      version: r.version,
      outcome: r.outcome,
    });
    this.notifier.publish({
      kind: "connector_update",
      deviceId: device.id,
      hostname: device.hostname,
      version: r.version,
      outcome: r.outcome,
      reason: r.reason.slice(0, 300),
    });
  }

  /** Every device's last report. */
  reports(): UpdateReportRecord[] {
    return this.store.releases.reports();
  }

  /** The dashboard: per rule (and devices no rule takes), devices, selection, versions run. */
  overview(): RuleOverview[] {
    const devices = this.store.devices.list();
    const a = this.assignments(devices);
    const rows = new Map<string, RuleOverview & { versions: Map<string, number> }>();
    for (const rule of [...this.rules(), null]) {
      rows.set(rule?.id ?? "", {
        rule,
        devices: 0,
        selected: 0,
        onTarget: 0,
        byVersion: [],
        versions: new Map(),
      });
    }
    for (const d of devices) {
      const x = a.get(d.id);
      const row = rows.get(x?.rule?.id ?? "")!;
      row.devices++;
      row.versions.set(d.connectorVersion, (row.versions.get(d.connectorVersion) ?? 0) + 1);
      if (x?.selected) {
        row.selected++;
        if (row.rule && compareVersions(d.connectorVersion, row.rule.targetVersion) === 0) {
          row.onTarget++;
        }
      }
    }
    return [...rows.values()].map(({ versions, ...r }) => ({
      ...r,
      byVersion: [...versions].map(([version, devices]) => ({ version, devices }))
        .sort((p, q) =>
          (compareVersions(q.version, p.version) ?? 0) || p.version.localeCompare(q.version)
        ),
    }));
  }
}
