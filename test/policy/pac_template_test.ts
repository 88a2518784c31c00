/** PAC templates: variables become JSON literals (no injection), unknown names are refused. */
import assert from "node:assert/strict";
import { renderPacTemplate, unknownPacVariable } from "../../src/policy/pac_template.ts";
import { evaluatePac } from "../../src/proxy/pac_eval.ts";
import { InputError } from "../../src/errors.ts";

const VARS = {
  PROXY: "100.64.0.1:3128",
  EDGE: "100.64.0.1",
  DEVICE_HOSTNAME: "ws-1",
  USER: "ana@example.com",
  GROUPS: ["eng", "ops"],
};

Deno.test("renderPacTemplate: each variable as a literal", () => {
  const cases: [string, string][] = [
    ["${PROXY}", '"100.64.0.1:3128"'],
    ["${EDGE}", '"100.64.0.1"'],
    ["${DEVICE_HOSTNAME}", '"ws-1"'],
    ["${USER}", '"ana@example.com"'],
    ["${GROUPS}", '["eng","ops"]'],
    ["a ${PROXY} b ${PROXY}", 'a "100.64.0.1:3128" b "100.64.0.1:3128"'],
    ["no variables $PROXY {PROXY}", "no variables $PROXY {PROXY}"],
  ];
  for (const [tpl, want] of cases) assert.equal(renderPacTemplate(tpl, VARS), want, tpl);
});

Deno.test("renderPacTemplate: hostile values stay inside their literal", async () => {
  const tpl = `var who = \${USER};
function FindProxyForURL(url, host) {
  if (typeof pwned != "undefined") return "PROXY pwned.example:1";
  return host == \${DEVICE_HOSTNAME} ? "DIRECT" : "PROXY " + \${PROXY};
}`;
  const hostile = [
    '"; var pwned = 1; "',
    '\\"; var pwned = 1; //',
    "\u2028var pwned = 1;\u2029",
    "</script><script>var pwned=1</script>",
    "'; var pwned = 1; '",
  ];
  for (const h of hostile) {
    const text = renderPacTemplate(tpl, { ...VARS, USER: h, DEVICE_HOSTNAME: h });
    assert.equal(text.includes("\u2028"), false);
    const out = await evaluatePac(text, "https://www.example.com/");
    assert.deepEqual(out, { ok: true, result: "PROXY 100.64.0.1:3128" }, JSON.stringify(h));
    const own = await evaluatePac(text, "https://x/");
    assert.equal(own.ok, true);
  }
});

Deno.test("renderPacTemplate: unknown variables are refused by name", () => {
  assert.equal(unknownPacVariable("${PROXY} ${HOST}"), "HOST");
  assert.equal(unknownPacVariable("${PROXY}"), null);
  assert.throws(
    () => renderPacTemplate("return ${proxy};", VARS),
    (e) =>
      e instanceof InputError && e.code === "invalid_pac_template" &&
      /"\$\{proxy\}"/.test(e.message),
  );
});
