import assert from "node:assert/strict";
import { CATALOGUES, LANGUAGES, negotiateLanguage, translator } from "../../../web/i18n/mod.ts";

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

Deno.test("i18n: every language has every key, non-empty, with the same placeholders", () => {
  const reference = Object.keys(CATALOGUES.en);
  assert.ok(reference.length > 200);
  for (const lang of LANGUAGES) {
    const cat = CATALOGUES[lang];
    assert.deepEqual(Object.keys(cat).sort(), [...reference].sort(), `keys of ${lang}`);
    for (const key of reference) {
      assert.ok(cat[key].trim().length > 0, `${lang}.${key} is empty`);
      assert.deepEqual(placeholders(cat[key]), placeholders(CATALOGUES.en[key]), `${lang}.${key}`);
    }
  }
});

Deno.test("i18n: German and French are translations, not copies", () => {
  for (const lang of ["de", "fr"] as const) {
    const same = Object.keys(CATALOGUES.en).filter((k) =>
      CATALOGUES[lang][k] === CATALOGUES.en[k] && /[a-z]{4,}\s[a-z]{3,}/i.test(CATALOGUES.en[k])
    );
    assert.deepEqual(same, [], `${lang} strings still in English`);
  }
});

Deno.test("i18n: every key the console source uses exists", async () => {
  const used = new Set<string>();
  for (const dir of ["src/http/console", "web"]) {
    for await (const e of Deno.readDir(dir)) {
      if (!/\.tsx?$/.test(e.name)) continue;
      const text = await Deno.readTextFile(`${dir}/${e.name}`);
      for (const m of text.matchAll(/\bt\(\s*"([a-z0-9_.]+)"/g)) used.add(m[1]);
    }
  }
  assert.ok(used.size > 100);
  for (const k of used) assert.ok(Object.hasOwn(CATALOGUES.en, k), `missing key ${k}`);
});

Deno.test("i18n: language negotiation", () => {
  const table: [string | undefined, string | undefined, string][] = [
    [undefined, undefined, "en"],
    ["de-DE,de;q=0.9,en;q=0.8", undefined, "de"],
    ["fr-CH, fr;q=0.9, en;q=0.8", undefined, "fr"],
    ["es-ES,es;q=0.9,fr;q=0.5,de;q=0.4", undefined, "fr"],
    ["en;q=0.2,de;q=0.8", undefined, "de"],
    ["de;q=0", undefined, "en"],
    ["ja", undefined, "en"],
    ["de", "fr", "fr"],
    ["de", "xx", "de"],
    ["*", undefined, "en"],
  ];
  for (const [accept, cookie, want] of table) {
    assert.equal(negotiateLanguage(accept, cookie), want, `${accept} / ${cookie}`);
  }
  const t = translator("de");
  assert.equal(t("dash.online_note", { total: 5 }), "von 5 registrierten");
  assert.equal(translator("fr")("layout.apply"), "Appliquer");
});
