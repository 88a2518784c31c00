import assert from "node:assert/strict";
import { OFFLOAD_NAMES, parseOffloadSetting } from "../../src/dataplane/offload.ts";
import { InputError } from "../../src/errors.ts";

/** The names a request turns on, in OFFLOAD_NAMES order. */
function on(text: string | undefined): string[] {
  const r = parseOffloadSetting(text);
  const got: Record<string, boolean> = {
    tso: !!r.tun.tso,
    uso: !!r.tun.uso,
    gro: !!r.tun.gro,
    "udp-gso": r.udp.gso,
    "udp-gro": r.udp.gro,
  };
  return OFFLOAD_NAMES.filter((n) => got[n]);
}

Deno.test("PORTCULLIS_OFFLOAD: on, off, lists of the ones to use or to leave out", () => {
  const all = [...OFFLOAD_NAMES];
  const cases: [string | undefined, string[]][] = [
    [undefined, all],
    ["", all],
    ["on", all],
    [" ALL ", all],
    ["off", []],
    ["none", []],
    ["tso", ["tso"]],
    ["tso, gro,udp-gso", ["tso", "gro", "udp-gso"]],
    ["-udp-gro", ["tso", "uso", "gro", "udp-gso"]],
    ["-uso,-gro", ["tso", "udp-gso", "udp-gro"]],
  ];
  for (const [text, want] of cases) assert.deepEqual(on(text), want, String(text));
});

Deno.test("PORTCULLIS_OFFLOAD: a bad value is named", () => {
  assert.throws(
    () => parseOffloadSetting("tso,jumbo"),
    (e) =>
      e instanceof InputError &&
      e.message ===
        'Cannot read PORTCULLIS_OFFLOAD "tso,jumbo": "jumbo" is not one of on, off, tso, uso, gro, udp-gso, udp-gro',
  );
  assert.throws(() => parseOffloadSetting("tso,-gro"), /either the offloads to use or/);
  assert.throws(() => parseOffloadSetting("-"), /"" is not one of/);
});
