/**
 * The heartbeat: every `heartbeatSec` the connector tells the edge its state,
 * transport and clock skew. Its answer is also the engine's steadiest sign of
 * whether the edge is there: a reply means reachable, a transport failure
 * counts against reachability, a refusal means the credential or the device
 * is no longer good.
 */
import type { HeartbeatReport } from "../../control/mod.ts";
import type { EngineState } from "../engine_state.ts";
import { VERSION } from "../../version.ts";
import {
  type EdgeApi,
  EdgeApiError,
  isCredentialRefused,
  isSignInLapsed,
  isUnreachable,
} from "../edge_api.ts";

/** What one heartbeat found out. */
export type HeartbeatOutcome =
  | { kind: "ok" }
  /** The edge refused the credential (re-enrolment needed) or the user's sign-in ended (sign in again). */
  | { kind: "refused"; error: Error }
  /** The admin disabled this device. */
  | { kind: "disabled"; message: string }
  /** The edge could not be reached (or answered 5xx). */
  | { kind: "unreachable"; message: string };

/** The report for the current state. */
export function heartbeatReport(s: EngineState, clockSkewMs: number | null): HeartbeatReport {
  return {
    state: s.kind,
    transport: s.kind === "connected" ? s.transport ?? null : null,
    clockSkewMs: clockSkewMs ?? undefined,
    connectorVersion: VERSION,
  };
}

/** Sends one heartbeat and classes the answer; other errors (a bad answer) are thrown. */
export async function sendHeartbeat(client: EdgeApi, s: EngineState): Promise<HeartbeatOutcome> {
  try {
    await client.heartbeat(heartbeatReport(s, client.clockSkewMs));
    return { kind: "ok" };
  } catch (err) {
    if (isCredentialRefused(err) || isSignInLapsed(err)) {
      return { kind: "refused", error: err as Error };
    }
    if (err instanceof EdgeApiError && err.code === "device_disabled") {
      return { kind: "disabled", message: err.message };
    }
    if (!isUnreachable(err)) throw err;
    return { kind: "unreachable", message: (err as Error).message };
  }
}
