/**
 * Benchmark (not a test): throughput of the DLP content engine on plain
 * text, PDF and DOCX, each beside a reference made of well-known tools on
 * the same file in the same run — GNU grep -E with equivalent patterns for
 * text, poppler's pdftotext | grep for PDF, unzip -p | sed | grep for DOCX —
 * reported as MB/s of the input file and as a ratio (ours / reference).
 * Ours does more than the reference: it validates every candidate (Luhn and
 * brand, IBAN mod 97, SSA rules), runs Aho–Corasick over 200 keywords and an
 * RE2 pattern, and redacts samples; grep only counts pattern hits.
 *
 * Also the engine's share of the inline upload latency (inspectUpload on a
 * 1 MB and a 20 MB body, text and DOCX), and the upload latency the edge
 * forward proxy adds inline: curl uploading 1 MB and 20 MB through the real
 * proxy engine on loopback sockets (src/proxy, the same engine the edge
 * runs) with the DLP check on, beside the same upload straight to the
 * origin and through the proxy with inspection off, in the same run.
 *
 * Documents are made by LibreOffice once and cached under /tmp.
 * Usage: flock /tmp/pcl-bench.lock deno task bench:dlp [runs=5]
 */
import { createHash } from "node:crypto";
import {
  DictionaryDef,
  DlpPolicy,
  DlpRule,
  inspectBytes,
  inspectUpload,
  Scanner,
} from "../../src/dlp/mod.ts";

const RUNS = Number(Deno.args[0] ?? 5);

const KEYWORDS = Array.from({ length: 200 }, (_, i) => `codename${i} falcon`);
const specs = [
  { name: "cards", kind: "credit_card" },
  { name: "ibans", kind: "iban" },
  { name: "ssn", kind: "us_ssn" },
  { name: "email", kind: "email" },
  { name: "secret", kind: "keywords", terms: ["confidential", ...KEYWORDS] },
  { name: "employee", kind: "regex", pattern: "EMP-[0-9]{6}" },
].map((d) => ({ def: DictionaryDef.parse(d) }));
const scanner = new Scanner(specs);

// Roughly what grep would need to find the same candidates (no validation).
const GREP_PATTERNS = [
  "[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{1,7}",
  "[A-Z]{2}[0-9]{2}( ?[A-Z0-9]{4}){3,7}",
  "[0-9]{3}-[0-9]{2}-[0-9]{4}",
  "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}",
  "confidential|codename[0-9]+ falcon",
  "EMP-[0-9]{6}",
];

/** A business-like text of about `bytes` bytes with sensitive values here and there. */
function corpus(bytes: number): string {
  const words =
    "the quarterly report shows revenue growth across all regions and the board approved the plan for next year"
      .split(" ");
  const lines: string[] = [];
  let n = 0, i = 0;
  while (n < bytes) {
    let line = "";
    for (let w = 0; w < 14; w++) line += words[(i * 7 + w * 3) % words.length] + " ";
    if (i % 40 === 0) line += "card 4111 1111 1111 1111 ";
    if (i % 97 === 0) line += "iban DE89 3704 0044 0532 0130 00 ";
    if (i % 131 === 0) line += "ssn 123-45-6780 mail jane.doe@example.com ";
    if (i % 211 === 0) line += "CONFIDENTIAL codename17 falcon EMP-123456 ";
    lines.push(line);
    n += line.length + 1;
    i++;
  }
  return lines.join("\n");
}

async function sh(cmd: string): Promise<void> {
  const r = await new Deno.Command("bash", { args: ["-c", cmd], stdout: "null", stderr: "piped" })
    .output();
  // grep exits 1 when it finds nothing; anything above is an error.
  if (r.code > 1) throw new Error(`${cmd}: ${new TextDecoder().decode(r.stderr)}`);
}

async function docs(
  text: string,
): Promise<{ dir: string; txt: string; pdf: string; docx: string }> {
  const key = createHash("sha256").update(text).digest("hex").slice(0, 12);
  const dir = `/tmp/portcullis-dlp-bench-${key}`;
  const out = {
    dir,
    txt: `${dir}/corpus.txt`,
    pdf: `${dir}/corpus.pdf`,
    docx: `${dir}/corpus.docx`,
  };
  try {
    await Deno.stat(out.docx);
    await Deno.stat(out.pdf);
    return out;
  } catch { /* make them */ }
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(out.txt, text);
  const profile = await Deno.makeTempDir({ prefix: "pcl-lo-bench-" });
  for (const to of ["pdf", "docx:MS Word 2007 XML"]) {
    const r = await new Deno.Command("soffice", {
      args: [
        `-env:UserInstallation=file://${profile}`,
        "--headless",
        "--convert-to",
        to,
        "--outdir",
        dir,
        out.txt,
      ],
      stdout: "null",
      stderr: "piped",
      env: { HOME: profile },
    }).output();
    if (!r.success) throw new Error(`LibreOffice: ${new TextDecoder().decode(r.stderr)}`);
  }
  await Deno.remove(profile, { recursive: true });
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const grepArgs = GREP_PATTERNS.map((p) => `-e '${p}'`).join(" ");
const text = corpus(8 * 1024 * 1024);
const d = await docs(corpus(1024 * 1024));
const cases: { name: string; file: string; reference: string }[] = [
  {
    name: "text (8 MiB)",
    file: `${d.dir}/big.txt`,
    reference: `LC_ALL=C grep -E -c ${grepArgs} FILE`,
  },
  { name: "PDF", file: d.pdf, reference: `pdftotext FILE - | LC_ALL=C grep -E -c ${grepArgs}` },
  {
    name: "DOCX",
    file: d.docx,
    reference:
      `unzip -p FILE word/document.xml | sed -e 's/<[^>]*>/ /g' | LC_ALL=C grep -E -c ${grepArgs}`,
  },
];
await Deno.writeTextFile(`${d.dir}/big.txt`, text);

console.log(
  `DLP content engine: median of ${RUNS} runs, MB/s of the input file (1 MB = 10^6 bytes)\n`,
);
console.log(
  "| input | size | text | ours MB/s | reference MB/s | ratio | ours, MB/s of text | found (cards) |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const c of cases) {
  const bytes = await Deno.readFile(c.file);
  let found = 0;
  let chars = 0;
  const ours: number[] = [], ref: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Interleaved, so both see the same machine load.
    ours.push(
      await time(async () => {
        const r = await inspectBytes(scanner, bytes, c.file);
        found = r.matches.find((m) => m.dictionary === "cards")?.count ?? 0;
        chars = r.textChars;
      }),
    );
    ref.push(await time(() => sh(c.reference.replace("FILE", c.file))));
  }
  const mbs = (ms: number) => bytes.length / 1e6 / (ms / 1000);
  const o = mbs(median(ours)), r = mbs(median(ref));
  console.log(
    [
      c.name,
      `${(bytes.length / 1e6).toFixed(2)} MB`,
      `${(chars / 1e6).toFixed(2)} M chars`,
      o.toFixed(1),
      r.toFixed(1),
      (o / r).toFixed(2),
      (chars / 1e6 / (median(ours) / 1000)).toFixed(1),
      found,
    ].join(" | ").replace(/^/, "| ") + " |",
  );
}

// The engine's share of inline upload latency.
const policy = new DlpPolicy(
  [DlpRule.parse({
    name: "web",
    channels: ["web_upload"],
    dictionaries: specs.map((s) => s.def.name),
    action: "block",
  })],
  specs,
);
console.log(
  `\ninspectUpload latency (engine only; the proxy's network path not included), median of ${RUNS}\n`,
);
console.log("| body | 1 MB | 20 MB |");
console.log("| --- | --- | --- |");
const enc = new TextEncoder();
const textBodies = [enc.encode(corpus(1_000_000)), enc.encode(corpus(20_000_000))];
const docxBytes = await Deno.readFile(d.docx);
const row = async (label: string, bodies: Uint8Array[]) => {
  const cells: string[] = [];
  for (const b of bodies) {
    const ts: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      ts.push(await time(() => inspectUpload(policy, b, { subject: { user: "u", groups: [] } })));
    }
    cells.push(`${median(ts).toFixed(0)} ms`);
  }
  console.log(`| ${label} | ${cells.join(" | ")} |`);
};
await row("raw text (streamed)", textBodies);
// A multipart form with the DOCX, and with a 20 MB text file beside it.
const form = (extra: Uint8Array | null) => {
  const f = new FormData();
  f.append("file", new File([docxBytes], "corpus.docx"));
  if (extra) f.append("more", new File([extra.slice()], "notes.txt"));
  return f;
};
const multipart = async (f: FormData) => {
  const req = new Request("http://x/", { method: "POST", body: f });
  return { ct: req.headers.get("content-type")!, body: new Uint8Array(await req.arrayBuffer()) };
};
const small = await multipart(form(null));
const large = await multipart(form(textBodies[1]));
const mp: string[] = [];
for (const m of [small, large]) {
  const ts: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    ts.push(
      await time(() =>
        inspectUpload(policy, m.body, { subject: { user: "u", groups: [] }, contentType: m.ct })
      ),
    );
  }
  mp.push(`${median(ts).toFixed(0)} ms (${(m.body.length / 1e6).toFixed(1)} MB)`);
}
console.log(`| multipart: DOCX / DOCX + 20 MB text | ${mp.join(" | ")} |`);

// The upload latency added inline by the edge proxy (real engine, real sockets, curl).
const { ProxyEngine } = await import("../../src/proxy/engine.ts");
const { startProxyServer } = await import("../../src/proxy/server.ts");
const { UrlPolicy } = await import("../../src/proxy/url_policy.ts");
const { systemClock } = await import("../../src/clock.ts");
const notifyPolicy = new DlpPolicy(
  [DlpRule.parse({
    name: "web",
    channels: ["web_upload"],
    dictionaries: specs.map((s) => s.def.name),
    // Notify, not block: the upload is inspected whole and still forwarded, so
    // both paths end at the origin and the times compare.
    action: "notify",
  })],
  specs,
);
const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
  const n = (await req.arrayBuffer()).byteLength;
  return new Response(`got ${n}\n`);
});
const subject = {
  deviceId: "bench",
  deviceName: "bench",
  user: "u",
  groups: [],
  machine: false,
};
const proxyWith = (inspect: boolean) => {
  const engine = new ProxyEngine({
    identify: () => subject,
    policy: () => new UrlPolicy([], new Map()),
    log: () => {},
    clock: systemClock,
    connect: () => Deno.connect({ hostname: "127.0.0.1", port: origin.addr.port }),
    uploads: inspect
      ? {
        limit: 32 * 1024 * 1024,
        check: async (body, meta) => {
          const v = await inspectUpload(notifyPolicy, body, {
            subject: { user: "u", groups: [] },
            contentType: meta.contentType,
          });
          return { block: v.action === "block", rule: v.rule, reason: v.reason };
        },
      }
      : undefined,
  });
  return startProxyServer({ hostname: "127.0.0.1", port: 0, engine });
};
const inspecting = proxyWith(true), relaying = proxyWith(false);
const curlTime = async (args: string[]) => {
  const out = await new Deno.Command("curl", {
    args: ["-s", "-o", "/dev/null", "-w", "%{time_total} %{http_code}", ...args],
    stdout: "piped",
  }).output();
  const [t, code] = new TextDecoder().decode(out.stdout).split(" ");
  if (code !== "200") throw new Error(`upload failed with ${code}`);
  return Number(t) * 1000;
};
console.log(
  `\nUpload latency added inline by the edge proxy (curl --data-binary, loopback, median of ${RUNS})\n`,
);
console.log("| body | direct | proxy, no inspection | proxy + DLP | added by the proxy with DLP |");
console.log("| --- | --- | --- | --- | --- |");
for (const [i, label] of [[0, "1 MB text"], [1, "20 MB text"]] as const) {
  const file = `${d.dir}/upload-${i}.txt`;
  await Deno.writeFile(file, textBodies[i]);
  const base = ["-H", "Content-Type: text/plain", "--data-binary", `@${file}`];
  const direct: number[] = [], relay: number[] = [], dlp: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    direct.push(await curlTime([...base, `http://127.0.0.1:${origin.addr.port}/up`]));
    relay.push(
      await curlTime([...base, "-x", `http://127.0.0.1:${relaying.port}`, "http://up.test/up"]),
    );
    dlp.push(
      await curlTime([...base, "-x", `http://127.0.0.1:${inspecting.port}`, "http://up.test/up"]),
    );
  }
  const [a, b, c] = [median(direct), median(relay), median(dlp)];
  console.log(
    `| ${label} | ${a.toFixed(0)} ms | ${b.toFixed(0)} ms | ${c.toFixed(0)} ms | ${
      (c - a).toFixed(0)
    } ms |`,
  );
}
await inspecting.close();
await relaying.close();
await origin.shutdown();
