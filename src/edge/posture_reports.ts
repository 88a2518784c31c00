/**
 * Accepting a connector's signed posture report: the signature must verify
 * with the device's signing key over the exact payload text (so the bearer
 * credential alone cannot forge facts), the payload must name this device,
 * be fresh (collected at most MAX_REPORT_SKEW_MS before or after the edge's
 * clock) and newer than the last accepted report (a replayed, once-good
 * report is refused). Nothing is stored unless every check passes; then the
 * facts are stored and the edge's own evaluation (EdgePostureSource) runs.
 */
import type { PostureVerdict } from "../control/mod.ts";
import { InputError } from "../errors.ts";
import { judgeProfiles } from "../policy/posture.ts";
import {
  factsFromWire,
  PostureReportPayload,
  type PostureReportPayload as Payload,
  postureSigningMessage,
  type SignedPostureReport,
} from "../posture/report.ts";
import type { DeviceRecord } from "../store/mod.ts";
import { storedProfiles } from "./access/posture_source.ts";
import type { EdgeContext } from "./context.ts";
import { openSignedPayload } from "./signed_payload.ts";

/** How far a report's collection time may lie from the edge's clock, either way (5 minutes). */
export const MAX_REPORT_SKEW_MS = 5 * 60_000;

/** Verifies the signature and parses the payload; throws InputError (4xx) otherwise. */
export function verifyPostureReport(device: DeviceRecord, report: SignedPostureReport): Payload {
  return openSignedPayload(
    device,
    report.payload,
    report.signature,
    postureSigningMessage(report.payload),
    PostureReportPayload,
    {
      noun: "posture report",
      signatureCode: "posture_signature_invalid",
      mismatchCode: "posture_device_mismatch",
    },
  );
}

/** Verifies, checks freshness, stores and evaluates a report; see the module comment. */
export function acceptPostureReport(
  ctx: EdgeContext,
  device: DeviceRecord,
  report: SignedPostureReport,
): PostureVerdict {
  const payload = verifyPostureReport(device, report);
  const now = ctx.clock.now();
  const at = Date.parse(payload.collectedAt);
  if (Math.abs(now - at) > MAX_REPORT_SKEW_MS) {
    throw new InputError(
      "posture_report_stale",
      `Cannot accept the posture report of device "${device.hostname}": it was collected at ${payload.collectedAt}, ${
        Math.round(Math.abs(now - at) / 1000)
      } s ${at < now ? "before" : "after"} the edge's time ${
        new Date(now).toISOString()
      } (at most ${MAX_REPORT_SKEW_MS / 1000} s either way)`,
    );
  }
  const standing = judgeProfiles(storedProfiles(ctx.store), factsFromWire(payload.facts), at, now);
  const passed = [...standing.values()].every((s) => s.passed);
  ctx.store.transaction(() => {
    const last = ctx.store.posture.latest(device.id);
    const lastAt = last ? Date.parse(last.collectedAt) : NaN;
    if (last && !(at > lastAt)) {
      throw new InputError(
        "posture_report_replayed",
        `Cannot accept the posture report of device "${device.hostname}" collected at ${payload.collectedAt}: a report collected at ${last.collectedAt} was already accepted`,
        409,
      );
    }
    ctx.store.posture.insert(device.id, new Date(at).toISOString(), now, passed, payload);
    ctx.store.devices.touch(device.id, now);
  });
  ctx.posture.reported?.(device.id);
  return {
    passed,
    profiles: [...standing].map(([profile, s]) => ({
      profile,
      passed: s.passed,
      reason: s.reason,
    })),
  };
}
