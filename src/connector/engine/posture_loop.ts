/**
 * Posture reports: every `postureSec` the connector collects the facts the
 * policy's posture profiles check and sends the results to the edge, which
 * decides access with them.
 */
import type { PostureReport } from "../../control/mod.ts";
import type { PolicyBundle } from "../../policy/types.ts";
import type { EdgeApi } from "../edge_api.ts";

/** Builds a posture report for a policy. */
export type CollectPosture = (policy: PolicyBundle) => Promise<PostureReport>;

/** Collects and sends one report; does nothing before enrolment or without a policy. */
export async function reportPostureOnce(
  client: EdgeApi | null,
  policy: PolicyBundle | null,
  collect: CollectPosture | undefined,
): Promise<boolean> {
  if (!client || !policy || !collect) return false;
  const report = await collect(policy);
  await client.reportPosture(report);
  return true;
}
