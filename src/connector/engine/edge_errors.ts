/**
 * What a failed call to the edge means for the engine, wherever it came from
 * (a refresh, a policy fetch, the stream, a heartbeat): a refused credential
 * ends the enrolment, an ended sign-in asks the user to sign in again, an unreachable edge is a fail-mode matter, anything
 * else is an error state until the user acts.
 */
import type { EngineEvent } from "../engine_state.ts";
import {
  type EdgeApiError,
  isCredentialRefused,
  isSignInLapsed,
  isUnreachable,
} from "../edge_api.ts";
import type { NoticeStep } from "./notices.ts";

/** The log line, notification and event for an edge error during `action`. */
export function edgeErrorReaction(
  err: unknown,
  action: string,
  unreachableMode: "direct" | "blocked",
): { steps: NoticeStep[]; event: EngineEvent } {
  const message = (err as Error).message;
  if (isSignInLapsed(err)) {
    // Not a refused credential: the enrolment stays, the user signs in again.
    return {
      steps: [{
        log: { level: "info", msg: `Cannot ${action}: sign-in required`, data: { error: message } },
      }],
      event: { type: "signin_lapsed", reason: message },
    };
  }
  if (isCredentialRefused(err)) {
    return {
      steps: [
        {
          log: {
            level: "error",
            msg: `Cannot ${action}: the edge refused the device credential`,
            data: { error: message },
          },
        },
        {
          notice: {
            type: "credential_rejected",
            severity: "error",
            message,
            data: { code: (err as EdgeApiError).code },
          },
        },
      ],
      event: { type: "credential_rejected", reason: message },
    };
  }
  if (isUnreachable(err)) {
    return {
      steps: [{
        log: { level: "warn", msg: `Cannot ${action}: edge unreachable`, data: { error: message } },
      }],
      event: { type: "edge_unreachable", mode: unreachableMode, reason: message },
    };
  }
  return {
    steps: [{ log: { level: "error", msg: `Cannot ${action}`, data: { error: message } } }],
    event: { type: "enroll_failed", reason: message },
  };
}
