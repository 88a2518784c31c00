/** Which local listener each engine state asks for (src/connector/mod.ts localProxyMode). */
import assert from "node:assert/strict";
import { localProxyMode } from "../../src/connector/mod.ts";
import type { EngineState, StateKind } from "../../src/connector/engine_state.ts";
import type { ForwardingAction } from "../../src/policy/types.ts";

Deno.test("localProxyMode: the relay while connected, the PAC also while the edge is gone", () => {
  const cases: [StateKind, ForwardingAction, ReturnType<typeof localProxyMode>][] = [
    ["connected", "tunnel_local_proxy", "local_proxy"],
    ["connecting", "tunnel_local_proxy", null],
    ["fail_open", "tunnel_local_proxy", null],
    ["connected", "enforce_pac", "enforce_pac"],
    ["connecting", "enforce_pac", "enforce_pac"],
    ["fail_open", "enforce_pac", "enforce_pac"],
    ["fail_closed", "enforce_pac", "enforce_pac"],
    ["captive_portal", "enforce_pac", null],
    ["disabled", "enforce_pac", null],
    ["trusted_network", "enforce_pac", null],
    ["unenrolled", "enforce_pac", null],
    ["connected", "tunnel", null],
    ["connected", "none", null],
  ];
  for (const [kind, action, want] of cases) {
    const s: EngineState = {
      kind,
      enrolled: true,
      verdict: { type: "off_trusted", action, explanation: "test" },
    };
    assert.equal(localProxyMode(s), want, `${kind} + ${action}`);
  }
  assert.equal(localProxyMode({ kind: "connected", enrolled: true, verdict: null }), null);
});
