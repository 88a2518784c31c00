/**
 * Which connector release each device should run: update rules evaluated
 * over the enrolled devices. Pure: the edge hands in rules and devices, gets
 * an assignment back.
 *
 * - Rules are tried in order (position); a device belongs to the first rule
 *   whose group it is in (a rule without a group takes every device). A
 *   device no rule takes is offered nothing.
 * - Within a rule, devices are ranked by SHA-256(rule id ":" device id), and
 *   the first round(percent × n / 100) of its n devices are selected. The
 *   rank depends only on the two ids, so re-evaluating the same fleet picks
 *   the same devices, raising the percentage only adds devices, and another
 *   rule (another id) draws another sample. (A threshold on the hash alone
 *   would be stable too, but 50 % of 10 devices could be 2 or 8 of them.)
 * - A paused rule keeps its devices but offers them nothing: they stay on
 *   what they run. A rollback rule lets its target be older than what a
 *   device runs; without it the connector refuses a downgrade. The rule's
 *   flag is not enough on its own: its signed authorisation goes with the
 *   offer, and the connector takes the downgrade only if that verifies.
 */
import { createHash } from "node:crypto";

/** An update rule as the store keeps it. */
export interface UpdateRule {
  id: string;
  name: string;
  /** The user group the rule applies to; null: every device. */
  group: string | null;
  /** Share of the rule's devices that get the target (0–100). */
  percent: number;
  targetVersion: string;
  paused: boolean;
  /** The target may be older than what a device runs. */
  rollback: boolean;
  /** The release key holder's signed permission for that (src/fleet/rollback_auth.ts). */
  rollbackAuthorisation?: string | null;
  position: number;
}

/** A device as rollout sees it. */
export interface RolloutDevice {
  id: string;
  /** The groups of the device's user (empty for a machine device). */
  groups: readonly string[];
}

/** Where one device stands. */
export interface RolloutAssignment {
  /** The rule that takes the device (null: none does). */
  rule: UpdateRule | null;
  /** Inside the rule's percentage. */
  selected: boolean;
}

/** What the edge offers a device: a version, and whether it may be older. */
export interface RolloutOffer {
  ruleId: string;
  ruleName: string;
  version: string;
  rollback: boolean;
  /** A rollback rule's signed authorisation (absent otherwise): the connector verifies it. */
  rollbackAuthorisation?: string;
}

/** The stable rank key of a device within a rule. */
export function rolloutRank(ruleId: string, deviceId: string): string {
  return createHash("sha256").update(`${ruleId}:${deviceId}`).digest("hex");
}

/** The first rule (by position) that takes a device. */
export function ruleFor(
  rules: readonly UpdateRule[],
  device: RolloutDevice,
): UpdateRule | null {
  const ordered = [...rules].sort((a, b) => a.position - b.position || a.id.localeCompare(b.id));
  return ordered.find((r) => r.group === null || device.groups.includes(r.group)) ?? null;
}

/** Assigns every device to its rule and says whether it is inside the percentage. */
export function assignRollout(
  rules: readonly UpdateRule[],
  devices: readonly RolloutDevice[],
): Map<string, RolloutAssignment> {
  const byRule = new Map<string, { rule: UpdateRule; ids: string[] }>();
  const out = new Map<string, RolloutAssignment>();
  for (const d of devices) {
    const rule = ruleFor(rules, d);
    out.set(d.id, { rule, selected: false });
    if (!rule) continue;
    const g = byRule.get(rule.id) ?? { rule, ids: [] };
    g.ids.push(d.id);
    byRule.set(rule.id, g);
  }
  for (const { rule, ids } of byRule.values()) {
    const take = Math.round((Math.min(100, Math.max(0, rule.percent)) * ids.length) / 100);
    const ranked = ids
      .map((id) => ({ id, key: rolloutRank(rule.id, id) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const { id } of ranked.slice(0, take)) out.set(id, { rule, selected: true });
  }
  return out;
}

/** The offer for one assignment: none outside a rule's percentage or while it is paused. */
export function offerFor(a: RolloutAssignment | undefined): RolloutOffer | null {
  if (!a?.rule || !a.selected || a.rule.paused) return null;
  const auth = a.rule.rollback ? a.rule.rollbackAuthorisation : null;
  return {
    ruleId: a.rule.id,
    ruleName: a.rule.name,
    version: a.rule.targetVersion,
    rollback: a.rule.rollback,
    ...(auth ? { rollbackAuthorisation: auth } : {}),
  };
}
