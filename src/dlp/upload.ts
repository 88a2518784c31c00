/**
 * The entry point for inline inspection, for the edge forward proxy (issue
 * 12) to call on request bodies of uploads: `inspectUpload(body, meta)`
 * → verdict. Raw text bodies are scanned as a stream in windows with an
 * overlap, so a large text upload is never held whole; documents, archives
 * and multipart forms need all their bytes (a ZIP's directory is at its end,
 * a PDF's cross-reference table too) and are buffered up to `maxBytes`.
 * Above that the verdict says "too large" and the policy's action for
 * uninspectable content is the caller's to apply.
 */
import { createHash } from "node:crypto";
import { sha256Hex } from "../identity/secrets.ts";
import { DEFAULT_BUDGET, type InspectBudget, inspectBytes, sniffType } from "./inspect.ts";
import { decide, type DlpDecision, type DlpPolicy } from "./policy.ts";
import type { Channel, DictionaryMatch, DlpSubject } from "./types.ts";
import { decodeText } from "./extract/text.ts";

/** What the caller knows about an upload. */
export interface UploadMeta {
  subject: DlpSubject;
  /** Default "web_upload"; "cloud_upload" for sanctioned cloud apps through the proxy. */
  channel?: Channel;
  /** The request's Content-Type (multipart bodies are split into their files). */
  contentType?: string | null;
  /** File name from the form or the URL, for the incident. */
  fileName?: string;
  /** Largest body inspected (default 32 MiB). */
  maxBytes?: number;
  budget?: InspectBudget;
}

/** One inspected file of the upload. */
export interface UploadFile {
  name: string;
  fileType: string;
  size: number;
  sha256: string;
  matches: DictionaryMatch[];
  skipped: { path: string; reason: string }[];
}

/** The verdict on an upload. */
export interface UploadVerdict extends DlpDecision {
  files: UploadFile[];
  /** True when the body was larger than `maxBytes` and was not inspected past it. */
  tooLarge: boolean;
  bytes: number;
}

/** Default largest upload inspected. */
export const DEFAULT_UPLOAD_LIMIT = 32 * 1024 * 1024;

/** Window of streaming text scans, and the overlap kept between windows. */
const WINDOW = 1024 * 1024;
const OVERLAP = 4096;

async function readUpTo(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<{ bytes: Uint8Array; more: boolean }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let more = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (total + value.length > limit) {
      chunks.push(value.subarray(0, limit - total));
      total = limit;
      more = true;
      await reader.cancel().catch(() => {});
      break;
    }
    chunks.push(value);
    total += value.length;
  }
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return { bytes, more };
}

/** Scans a text stream window by window; only the overlap is kept between windows. */
async function streamText(
  policy: DlpPolicy,
  first: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
): Promise<{ matches: DictionaryMatch[]; bytes: number; sha256: string; more: boolean }> {
  const tally = policy.scanner.tally();
  const decoder = new TextDecoder();
  const hash = createHash("sha256");
  let carry = "";
  let pending = decoder.decode(first, { stream: true });
  hash.update(first);
  let bytes = first.length;
  let more = false;
  // Windows of exactly WINDOW characters (the last one shorter), each scanned
  // with the tail of the one before.
  const flush = (final: boolean) => {
    while (pending.length >= WINDOW || (final && pending.length > 0)) {
      const piece = pending.slice(0, WINDOW);
      pending = pending.slice(piece.length);
      const text = carry + piece;
      policy.scanner.scanText(text, tally, carry.length);
      carry = text.slice(-OVERLAP);
    }
  };
  flush(false);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (bytes + value.length > limit) {
      more = true;
      await reader.cancel().catch(() => {});
      break;
    }
    bytes += value.length;
    hash.update(value);
    pending += decoder.decode(value, { stream: true });
    flush(false);
  }
  pending += decoder.decode();
  flush(true);
  return { matches: tally.matches(), bytes, sha256: hash.digest("hex"), more };
}

function mergeMatches(files: UploadFile[]): DictionaryMatch[] {
  const by = new Map<string, DictionaryMatch>();
  for (const f of files) {
    for (const m of f.matches) {
      const cur = by.get(m.dictionary);
      if (!cur) by.set(m.dictionary, { ...m, samples: m.samples.slice() });
      else {
        cur.count += m.count;
        cur.triggered ||= m.triggered;
        for (const s of m.samples) if (cur.samples.length < 3) cur.samples.push(s);
      }
    }
  }
  return [...by.values()];
}

/**
 * Inspects an upload body (a stream or bytes) and decides with `policy`.
 * Multipart bodies are split into their file and field parts, each inspected.
 */
export async function inspectUpload(
  policy: DlpPolicy,
  body: ReadableStream<Uint8Array> | Uint8Array,
  meta: UploadMeta,
): Promise<UploadVerdict> {
  const channel = meta.channel ?? "web_upload";
  const limit = meta.maxBytes ?? DEFAULT_UPLOAD_LIMIT;
  const budget = meta.budget ?? DEFAULT_BUDGET;
  const ct = (meta.contentType ?? "").toLowerCase();
  const files: UploadFile[] = [];
  let tooLarge = false;
  let bytesSeen = 0;
  const verdict = (): UploadVerdict => {
    const d = decide(policy, meta.subject, channel, mergeMatches(files));
    return { ...d, files, tooLarge, bytes: bytesSeen };
  };
  if (!policy.covers(channel, meta.subject)) {
    return { ...decide(policy, meta.subject, channel, []), files, tooLarge, bytes: 0 };
  }

  if (ct.startsWith("multipart/form-data")) {
    const { bytes, more } = body instanceof Uint8Array
      ? { bytes: body.subarray(0, limit), more: body.length > limit }
      : await readUpTo(body, limit);
    tooLarge = more;
    bytesSeen = bytes.length;
    if (more) return verdict();
    let form: FormData;
    try {
      form = await new Response(bytes.slice(), { headers: { "content-type": meta.contentType! } })
        .formData();
    } catch {
      // Not parseable as a form: inspect the raw bytes as one file.
      files.push(await inspectFile(policy, bytes, meta.fileName ?? "body", budget));
      return verdict();
    }
    for (const [field, value] of form) {
      const data = typeof value === "string"
        ? new TextEncoder().encode(value)
        : new Uint8Array(await value.arrayBuffer());
      const name = typeof value === "string" ? `field ${field}` : (value.name || field);
      files.push(await inspectFile(policy, data, name, budget));
    }
    return verdict();
  }

  // A raw body: sniff the first bytes; text streams, anything else is buffered.
  const stream = body instanceof Uint8Array
    ? new Blob([body.slice()]).stream() as ReadableStream<Uint8Array>
    : body;
  const reader = stream.getReader();
  const head = await readHead(reader, 64 * 1024);
  if (head.bytes.length > limit) {
    await reader.cancel().catch(() => {});
    return { ...verdict(), tooLarge: true, bytes: head.bytes.length };
  }
  const type = await sniffType(head.bytes);
  if (type.ext === "text" && decodeText(head.bytes) !== null) {
    const r = await streamText(policy, head.bytes, reader, limit);
    tooLarge = r.more;
    bytesSeen = r.bytes;
    files.push({
      name: meta.fileName ?? "body",
      fileType: "text",
      size: r.bytes,
      sha256: r.sha256,
      matches: r.matches,
      skipped: r.more ? [{ path: meta.fileName ?? "body", reason: "larger than the limit" }] : [],
    });
    return verdict();
  }
  const rest = await readUpTo(
    new ReadableStream({
      pull: async (c) => {
        const { done, value } = await reader.read();
        if (done) c.close();
        else c.enqueue(value);
      },
      cancel: () => reader.cancel(),
    }),
    Math.max(0, limit - head.bytes.length),
  );
  tooLarge = rest.more;
  const all = new Uint8Array(head.bytes.length + rest.bytes.length);
  all.set(head.bytes);
  all.set(rest.bytes, head.bytes.length);
  bytesSeen = all.length;
  if (!tooLarge) files.push(await inspectFile(policy, all, meta.fileName ?? "body", budget));
  return verdict();
}

async function readHead(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  want: number,
): Promise<{ bytes: Uint8Array }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total < want) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return { bytes };
}

/** Inspects one file's bytes with the policy's scanner. */
export async function inspectFile(
  policy: DlpPolicy,
  bytes: Uint8Array,
  name: string,
  budget: InspectBudget = DEFAULT_BUDGET,
): Promise<UploadFile> {
  const r = await inspectBytes(policy.scanner, bytes, name, budget);
  return {
    name,
    fileType: r.fileType,
    size: r.size,
    sha256: sha256Hex(bytes),
    matches: r.matches,
    skipped: r.skipped,
  };
}
