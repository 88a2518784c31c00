/**
 * "Why can't this device reach that app?": the same evaluator the data path
 * uses, asked with a destination typed by an admin, with the subject and the
 * posture it was decided with, so the console shows the deciding rule and
 * reason exactly as enforcement would decide the next flow.
 */
import { NotFoundError } from "../../errors.ts";
import {
  type AccessDecision,
  type AccessSubject,
  type FlowProtocol,
  nonInternetReason,
} from "../../policy/access.ts";
import { ipv4ToNumber, parseIpv4Text } from "../../packet/addr.ts";
import { parsePrefix4 } from "../addresses.ts";
import type { EdgeContext } from "../context.ts";
import { deviceForAddress } from "../devices.ts";
import { subjectFor } from "../subjects.ts";

/** A destination as an admin gives it. */
export interface ExplainDestination {
  ip?: string;
  name?: string;
  port?: number;
  protocol: FlowProtocol;
}

/** The answer: decision, and what it was decided with. */
export interface Explanation {
  subject: AccessSubject;
  posture: { profile: string; passed: boolean; reason: string; expiresAt: string }[];
  decision: AccessDecision;
}

/** Explains the decision for device `deviceId` and `dest` (404 for an unknown device). */
export function explainAccess(
  ctx: EdgeContext,
  deviceId: string,
  dest: ExplainDestination,
): Explanation {
  const subject = subjectFor(ctx.store, deviceId);
  if (!subject) {
    throw new NotFoundError("device_not_found", `Cannot find device "${deviceId.slice(0, 64)}"`);
  }
  const posture = ctx.posture.profiles(deviceId);
  const now = ctx.clock.now();
  const access = ctx.policy.compiled().access;
  const names = dest.name ? [dest.name] : [];
  let priv: { reason: string } | null = null;
  let decision: AccessDecision | null = null;
  const ip = dest.ip ? parseIpv4Text(dest.ip) : null;
  const net = parsePrefix4(ctx.network)!;
  const mask = net.len === 0 ? 0 : (0xffffffff << (32 - net.len)) >>> 0;
  const inNet = ip !== null && ((ipv4ToNumber(ip) & mask) >>> 0) === net.base;
  const deny = (reason: string): AccessDecision => ({
    allowed: false,
    private: true,
    segments: [],
    rule: null,
    reason,
  });
  if (dest.ip === ctx.edgeAddress) {
    decision = {
      allowed: true,
      private: false,
      segments: [],
      rule: null,
      reason: "allowed: the edge's own services (DNS, am-I-protected) are always reachable",
    };
  } else if (inNet && dest.ip) {
    if (!ctx.policy.clientToClient().enabled) {
      decision = deny("denied: client-to-client is disabled");
    } else {
      const peer = deviceForAddress(ctx, dest.ip);
      const reg = peer ? ctx.store.c2c.get(peer.id) : undefined;
      if (!peer || peer.disabled) decision = deny(`denied: no device holds ${dest.ip}`);
      else if (!reg?.valid) {
        decision = deny(`denied: device "${peer.hostname}" has no valid registered host name`);
      } else {
        names.push(reg.fqdn);
        priv = { reason: `the destination is device "${peer.hostname}"` };
      }
    }
  } else if (dest.ip) {
    // As the data plane judges it: an address that is not the internet is private.
    const special = nonInternetReason(dest.ip);
    if (special) priv = { reason: special };
  }
  decision ??= access.explain(subject, posture, {
    ip: dest.ip,
    names,
    port: dest.port,
    protocol: dest.protocol,
    private: priv,
  }, now);
  return {
    subject,
    posture: [...posture].map(([profile, p]) => ({
      profile,
      passed: p.passed && now < p.expiresAt,
      reason: p.reason,
      expiresAt: new Date(p.expiresAt).toISOString(),
    })),
    decision,
  };
}
