/**
 * How the engine reacts to what network awareness decides (src/connector/
 * awareness.ts): a captive portal found or gone, its window over, the edge
 * unreachable or back. Pure: a decision and the current state in, the log
 * lines and notifications plus the engine actions out, in order.
 */
import type { AwarenessDecision } from "../awareness.ts";
import type { EngineEvent, StateKind } from "../engine_state.ts";
import type { NoticeStep } from "./notices.ts";

/** What the engine does about a decision. */
export type AwarenessAction =
  /** Tell the machine a portal holds us (the window length comes from the policy). */
  | { type: "captive_detected" }
  /** Tell the machine the portal let us through. */
  | { type: "captive_cleared" }
  /** The window timer is moot: awareness saw the window end itself. */
  | { type: "cancel_captive_timer" }
  /** Queue this event. */
  | { type: "event"; event: EngineEvent };

/** The outputs and actions for one decision. */
export interface AwarenessReaction {
  steps: NoticeStep[];
  actions: AwarenessAction[];
}

/** The reaction to decision `d` while the engine is in state `kind`. */
export function awarenessReaction(d: AwarenessDecision, kind: StateKind): AwarenessReaction {
  switch (d.type) {
    case "portal_detected": {
      const where = d.location ? `; the login page is ${d.location}` : "";
      return {
        steps: [
          {
            notice: {
              type: "captive_portal",
              severity: "warn",
              message:
                `Sign in to the network: a captive portal is in the way (${d.detail}${where}). ` +
                `Protection is paused for up to ${d.windowMin} min so you can reach the login page.`,
              data: { location: d.location ?? null, windowMin: d.windowMin, detail: d.detail },
            },
          },
          {
            log: {
              level: "warn",
              msg: "Captive portal detected",
              data: { detail: d.detail, location: d.location },
            },
          },
        ],
        actions: [{ type: "captive_detected" }],
      };
    }
    case "portal_cleared":
      return {
        steps: [
          {
            notice: {
              type: "captive_portal_cleared",
              severity: "info",
              message: `Signed in: the captive portal let us through after ${
                Math.round(d.heldMs / 1000)
              } s; protection resumes`,
              data: { heldMs: Math.round(d.heldMs) },
            },
          },
          {
            log: {
              level: "info",
              msg: "Captive portal cleared",
              data: { heldMs: Math.round(d.heldMs) },
            },
          },
        ],
        actions: [{ type: "captive_cleared" }],
      };
    case "window_expired":
      return {
        steps: [{
          notice: {
            type: "captive_portal_expired",
            severity: "warn",
            message: d.action === "fail_open"
              ? "The captive-portal window ended before sign-in: failing open, as the profile says"
              : "The captive-portal window ended before sign-in: protection is enforced again, as the profile says",
            data: { action: d.action },
          },
        }],
        actions: [
          { type: "cancel_captive_timer" },
          { type: "event", event: { type: "captive_expired", then: d.action } },
        ],
      };
    case "edge_unreachable": {
      const steps: NoticeStep[] = [{
        log: {
          level: "warn",
          msg: "Edge unreachable",
          data: { failures: d.failures, reason: d.reason },
        },
      }];
      // A working tunnel says otherwise.
      if (kind === "connected") return { steps, actions: [] };
      return {
        steps,
        actions: [{
          type: "event",
          event: {
            type: "edge_unreachable",
            mode: d.action === "fail_open" ? "direct" : "blocked",
            reason: `no answer to ${d.failures} attempts in a row: ${d.reason}`,
          },
        }],
      };
    }
    case "edge_recovered": {
      const steps: NoticeStep[] = d.from === "retrying" ? [] : [{
        notice: {
          type: "edge_reachable",
          severity: "info",
          message: `The edge answers again after ${Math.round(d.downMs / 1000)} s unreachable`,
          data: { downMs: Math.round(d.downMs), from: d.from },
        },
      }];
      const recovering = kind === "fail_open" || kind === "fail_closed" || kind === "error";
      return {
        steps,
        actions: recovering ? [{ type: "event", event: { type: "edge_reachable" } }] : [],
      };
    }
  }
}
