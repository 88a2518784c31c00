/** What an edge error means for the engine (table). */
import assert from "node:assert/strict";
import {
  EdgeApiError,
  EdgeTlsError,
  EdgeUnreachableError,
} from "../../../src/connector/edge_api.ts";
import { edgeErrorReaction } from "../../../src/connector/engine/edge_errors.ts";

Deno.test("edge errors: refused credential, unreachable edge, anything else", () => {
  const table: [Error, "direct" | "blocked", string, string[]][] = [
    [
      new EdgeApiError("bad_credential", "Unknown device.", 401),
      "direct",
      "credential_rejected",
      ["credential_rejected"],
    ],
    [
      new EdgeApiError("device_fingerprint_mismatch", "Other hardware.", 403),
      "direct",
      "credential_rejected",
      ["credential_rejected"],
    ],
    // A lapsed sign-in is a 401 too, but the credential is good: the enrolment stays.
    [
      new EdgeApiError("signin_expired", "The sign-in of ana ended; sign in again", 401),
      "direct",
      "signin_lapsed",
      [],
    ],
    [new EdgeUnreachableError("refused"), "blocked", "edge_unreachable", []],
    [new EdgeTlsError("middlebox"), "direct", "edge_unreachable", []],
    [new EdgeApiError("down", "Down.", 502), "direct", "edge_unreachable", []],
    [new EdgeApiError("device_disabled", "Disabled.", 403), "direct", "enroll_failed", []],
    [new Error("bug"), "direct", "enroll_failed", []],
  ];
  for (const [err, mode, event, notices] of table) {
    const r = edgeErrorReaction(err, "fetch policy", mode);
    assert.equal(r.event.type, event, err.message);
    assert.deepEqual(
      r.steps.flatMap((s) => ("notice" in s ? [s.notice.type] : [])),
      notices,
      err.message,
    );
    const line = r.steps.find((s) => "log" in s);
    assert.ok(line && "log" in line && line.log.msg.startsWith("Cannot fetch policy"));
    if (r.event.type === "edge_unreachable") assert.equal(r.event.mode, mode);
  }
});
