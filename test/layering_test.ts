/**
 * The layering of DESIGN.md §2, checked on the source: `main.ts` → `lab/` →
 * `http/` → roles → services → `dataplane/` → … → `packet/`, `log.ts`, …; an
 * import never runs up the list. Above all the domain never imports
 * `src/http`: HTTP maps wire schemas onto domain types at its edge, and
 * main.ts hands the roles their apps and clients.
 *
 * Imports are read from the text (static `import`/`export … from` at the
 * start of a line, as `deno fmt` writes them, and literal dynamic
 * `import("…")`), so the check needs no type checker and covers every file,
 * reachable from main.ts or not.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

/**
 * Rank of each part of src/ (lower is higher up). A file may import its own
 * rank or below. A new folder must be given its place here.
 */
const RANKS: Record<string, number> = {
  lab: 1,
  http: 2,
  edge: 3,
  connector: 3,
  // services (DESIGN.md §2), some not written yet
  proxy: 4,
  dlp: 4,
  zdx: 4,
  saas: 4,
  fleet: 4,
  diag: 4,
  dataplane: 5,
  // the control protocol's messages: below both roles, above the value types they carry
  control: 5,
  wireguard: 6,
  tun: 6,
  policy: 6,
  identity: 6,
  posture: 6,
  net: 7,
  store: 7,
  notify: 7,
  packet: 8,
  "log.ts": 8,
  "clock.ts": 8,
  "errors.ts": 8,
  "config.ts": 8,
  "cli_args.ts": 8,
  "serve.ts": 8,
  "defaults.ts": 8,
  "install.ts": 8,
  "service_unit.ts": 8,
  "version.ts": 8,
  "duration.ts": 8,
  "base64.ts": 8,
};

/** Where a file outside src/ sits: ffi/ at the bottom, web/ with http/, the rest (main.ts) on top. */
function rankOf(repoPath: string): number | null {
  const parts = repoPath.split("/");
  if (parts[0] === "ffi") return 8;
  if (parts[0] === "web") return 2;
  if (parts[0] !== "src") return 0;
  return RANKS[parts[1]] ?? null;
}

/** The domain folders that must never import src/http (issue 9, DESIGN.md §2). */
const DOMAIN = [
  "policy",
  "store",
  "identity",
  "edge",
  "connector",
  "posture",
  "wireguard",
  "dataplane",
  "net",
  "notify",
  "diag",
  "tun",
  "packet",
  "control",
];

const STATIC_IMPORT =
  /^(?:import|export)\s[^"'`;]*?\bfrom\s*["']([^"']+)["']|^import\s*["']([^"']+)["']/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The import specifiers written in a module's text. */
export function importSpecifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(STATIC_IMPORT)) out.push(m[1] ?? m[2]);
  for (const m of text.matchAll(DYNAMIC_IMPORT)) out.push(m[1]);
  return out;
}

/** One import that breaks a rule. */
interface Violation {
  file: string;
  imports: string;
  why: string;
}

/**
 * Checks a map of repo-relative module paths to their specifiers: relative
 * imports must not run up the layers, domain folders must not reach src/http,
 * and nothing below http/ may use the web framework.
 */
export function violations(modules: Record<string, string[]>): Violation[] {
  const out: Violation[] = [];
  for (const [file, specs] of Object.entries(modules)) {
    const from = rankOf(file);
    const folder = file.split("/")[1];
    if (from === null) {
      out.push({
        file,
        imports: "",
        why: `src/${folder} has no place in the layers: add it to RANKS in test/layering_test.ts`,
      });
      continue;
    }
    for (const spec of specs) {
      if (spec === "hono" || spec.startsWith("hono/")) {
        if (from > RANKS.http) {
          out.push({ file, imports: spec, why: "only http/ (and lab/) use the web framework" });
        }
        continue;
      }
      if (!spec.startsWith("./") && !spec.startsWith("../")) continue;
      const target = normalize(join(dirname(file), spec));
      if (target.startsWith("src/http/") && DOMAIN.includes(folder)) {
        out.push({ file, imports: target, why: "the domain never imports src/http" });
        continue;
      }
      const to = rankOf(target);
      if (to !== null && to < from) {
        out.push({ file, imports: target, why: `an import runs up the layers (${from} → ${to})` });
      }
    }
  }
  return out;
}

async function sourceModules(): Promise<Record<string, string[]>> {
  const modules: Record<string, string[]> = {};
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (/\.tsx?$/.test(e.name)) {
        modules[relative(ROOT, p)] = importSpecifiers(await Deno.readTextFile(p));
      }
    }
  };
  await walk(join(ROOT, "src"));
  return modules;
}

Deno.test("layering: the checker finds what it is meant to find", async (t) => {
  await t.step("import specifiers, static and dynamic, not in comments or strings", () => {
    const text = [
      'import { a } from "./a.ts";',
      "import type {",
      "  B,",
      "  C,",
      '} from "../b/c.ts";',
      'export { d } from "./d.ts";',
      'import "./side.ts";',
      'export const X = "./not-an-import.ts";',
      ' * import { old } from "../http/doc_comment.ts";',
      'const m = await import("../lazy.ts");',
    ].join("\n");
    assert.deepEqual(importSpecifiers(text), [
      "./a.ts",
      "../b/c.ts",
      "./d.ts",
      "./side.ts",
      "../lazy.ts",
    ]);
  });
  await t.step("rules, as a table", () => {
    const table: [string, string, string | null][] = [
      ["src/edge/run.ts", "../http/serve.ts", "the domain never imports src/http"],
      ["src/store/x.ts", "../http/api/schemas.ts", "the domain never imports src/http"],
      ["src/connector/engine/runner.ts", "../../http/a.ts", "the domain never imports src/http"],
      ["src/policy/posture.ts", "../edge/devices.ts", "an import runs up the layers (6 → 3)"],
      ["src/store/x.ts", "../control/mod.ts", "an import runs up the layers (7 → 5)"],
      ["src/connector/x.ts", "hono", "only http/ (and lab/) use the web framework"],
      ["src/newthing/x.ts", "./y.ts", "src/newthing has no place in the layers"],
      ["src/lab/services.ts", "../http/serve.ts", null],
      ["src/lab/services.ts", "hono", null],
      ["src/http/edge_client.ts", "../connector/edge_api.ts", null],
      ["src/connector/engine/mod.ts", "../../control/mod.ts", null],
      ["src/control/mod.ts", "../policy/types.ts", null],
      ["src/posture/mod.ts", "../policy/types.ts", null],
      ["src/net/udp.ts", "../../ffi/libc.ts", null],
      ["src/edge/x.ts", "zod", null],
    ];
    for (const [file, spec, why] of table) {
      const v = violations({ [file]: [spec] });
      if (why === null) assert.deepEqual(v, [], `${file} → ${spec}`);
      else {
        assert.equal(v.length, 1, `${file} → ${spec}`);
        assert.ok(v[0].why.startsWith(why), `${file} → ${spec}: ${v[0].why}`);
      }
    }
  });
});

Deno.test("layering: no module under src/ imports up the layers; the domain never imports src/http", async () => {
  const modules = await sourceModules();
  assert.ok(Object.keys(modules).length > 100, "the walk found the sources");
  const found = violations(modules);
  assert.deepEqual(
    found.map((v) => `${v.file} → ${v.imports}: ${v.why}`),
    [],
  );
});
