/**
 * inspectUpload, the inline entry point for the edge proxy: multipart forms
 * split into files, raw text streamed in windows (findings across a window
 * boundary counted once), documents buffered, and the size limit.
 */
import assert from "node:assert/strict";
import { zipSync } from "fflate";
import { DlpPolicy, DlpRule, inspectUpload } from "../../src/dlp/mod.ts";
import { spec } from "./helpers.ts";

const policy = new DlpPolicy([
  DlpRule.parse({
    name: "No cards to the web",
    channels: ["web_upload", "cloud_upload"],
    dictionaries: ["cards"],
    action: "block",
  }),
], [spec({ kind: "credit_card", name: "cards" })]);
const who = { subject: { user: "alice", groups: [] } };
const enc = (s: string) => new TextEncoder().encode(s);

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++]);
      else c.close();
    },
  });
}

Deno.test("inspectUpload: a multipart form with a document and a field", async () => {
  const docx = zipSync({
    "word/document.xml": enc(
      "<w:document><w:body><w:p><w:r><w:t>4111 1111 1111 1111</w:t></w:r></w:p><w:p><w:r><w:t>5555555555554444</w:t></w:r></w:p></w:body></w:document>",
    ),
  });
  const form = new FormData();
  form.append("comment", "see 378282246310005");
  form.append("file", new File([docx], "refunds.docx"));
  const req = new Request("http://x/", { method: "POST", body: form });
  const v = await inspectUpload(policy, req.body!, {
    ...who,
    contentType: req.headers.get("content-type"),
  });
  assert.equal(v.action, "block");
  assert.equal(v.rule, "No cards to the web");
  assert.deepEqual(v.files.map((f) => [f.name, f.fileType, f.matches[0]?.count ?? 0]), [
    ["field comment", "text", 1],
    ["refunds.docx", "docx", 2],
  ]);
  assert.equal(v.matches[0].count, 3);
  assert.match(v.reason, /3 credit card numbers/);
});

Deno.test("inspectUpload: raw text is streamed; a number across a window boundary counts once", async () => {
  // Windows are 1 MiB of text with 4 KiB of overlap: the first number
  // straddles the first window edge, the second lies wholly in the overlap
  // of windows two and three (so both windows see it).
  const fill = (n: number) => ".".repeat(n - 1) + " ";
  const text = fill(1_048_570) + "4111111111111111 " + fill(1_048_497) + "5555555555554444 " +
    fill(500_000);
  const bytes = enc(text);
  // Chunks of 1,048,600 bytes put both numbers wholly inside the overlap two
  // windows share; chunks of 1,048,580 cut the first number in two.
  for (const size of [1_048_600, 1_048_580, 65_536]) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
    const v = await inspectUpload(policy, streamOf(chunks), { ...who, fileName: "notes.txt" });
    assert.equal(v.files[0].fileType, "text");
    assert.equal(v.files[0].matches[0].count, 2, `chunks of ${size}`);
    assert.equal(v.files[0].size, bytes.length);
    assert.equal(v.action, "block");
  }
  const clean = await inspectUpload(policy, streamOf([enc(fill(3_000_000))]), who);
  assert.equal(clean.action, "allow");
  assert.equal(clean.rule, null);
});

Deno.test("inspectUpload: over the limit is reported, not inspected; uncovered channels are not scanned", async () => {
  const big = await inspectUpload(policy, enc("4111111111111111 ".repeat(1000)), {
    ...who,
    maxBytes: 1000,
  });
  assert.equal(big.tooLarge, true);
  const printing = await inspectUpload(policy, enc("4111111111111111"), {
    ...who,
    channel: "printing",
  });
  assert.equal(printing.action, "allow");
  assert.equal(printing.files.length, 0);
});
