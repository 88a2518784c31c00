/**
 * Forwarding one plain HTTP request the URL policy allowed: the upload is
 * read whole and inspected first when it fits the limit (a body that fails
 * inspection never reaches the origin), then the head (origin-form, one
 * request per connection) and body go to the origin and the answer comes
 * back as it streams, counted for the web log.
 */
import { logger } from "../log.ts";
import type { AccessSubject } from "../policy/access.ts";
import type { UploadCheck, UploadOutcome, WebLogEntry } from "./engine_types.ts";
import { readWholeBody } from "./http_body.ts";
import { header, originHead, type RequestHead, type RequestTarget } from "./http_head.ts";
import { badRequest, page } from "./replies.ts";
import { closeQuietly, type Duplex, type PeekReader, pipe, writeAll } from "./stream.ts";
import type { UrlVerdict } from "./url_policy.ts";
import { originFailure } from "./origin_reach.ts";

const log = logger("proxy");

/** Methods whose bodies are inspected as uploads. */
export const UPLOAD_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH"]);

/** What forwarding needs from the engine. */
export interface ForwardHost {
  uploads?: { check: UploadCheck; limit: number };
  /** Opens a TCP connection to the origin. */
  connect(host: string, port: number): Promise<Duplex>;
  log(e: WebLogEntry): void;
  logForwarded(
    base: WebLogEntry,
    v: UrlVerdict,
    o: { status: number | null; bytesUp: number; bytesDown: number; uninspectedUpload?: boolean },
  ): void;
  countBlocked(): void;
}

/** One request to forward, as the engine read and decided it. */
export interface ForwardRequest {
  reader: PeekReader;
  client: Duplex;
  head: RequestHead;
  t: RequestTarget;
  subject: AccessSubject;
  base: WebLogEntry;
  v: UrlVerdict;
  url: string;
  tls: boolean;
}

/** Sends the request to the origin and the answer back, inspecting uploads first. */
export async function forwardRequest(h: ForwardHost, r: ForwardRequest): Promise<void> {
  const { reader, client, head, t, subject, base, v, url, tls } = r;

  const cl = header(head, "content-length");
  const chunked = /chunked/i.test(header(head, "transfer-encoding") ?? "");
  const length = cl === null ? 0 : Number(cl);
  if (cl !== null && (!/^\d{1,15}$/.test(cl.trim()))) {
    await badRequest(client, "bad_length", new Error(`Bad Content-Length "${cl}"`));
    return;
  }
  let body: Uint8Array | null = null;
  let up = 0;
  const up_ = h.uploads;
  if (up_ && UPLOAD_METHODS.has(head.method) && (length > 0 || chunked)) {
    const whole = await readWholeBody(
      reader,
      chunked ? { chunked: true } : { length },
      up_.limit,
    );
    if (whole) {
      // An inspection that fails blocks: an upload is never let through unseen by accident.
      const outcome = await up_.check(whole.bytes, {
        subject,
        contentType: header(head, "content-type"),
        fileName: fileNameOf(t.path),
        host: t.host,
        url,
      }).catch((e): UploadOutcome => {
        log.warn("Upload inspection failed", { host: t.host, error: (e as Error).message });
        return { block: true, rule: null, reason: "the upload could not be inspected" };
      });
      if (outcome.block) {
        h.countBlocked();
        h.log({
          ...base,
          action: "block",
          rule: outcome.rule,
          categories: v.categories,
          reason: `upload blocked: ${outcome.reason}`,
          status: 403,
          bytesUp: whole.wireBytes,
        });
        await page(client, head, {
          code: "dlp_blocked",
          host: t.host,
          url,
          rule: outcome.rule,
          detail: outcome.reason,
        });
        return;
      }
      body = whole.bytes;
    }
    // Larger than the limit: forwarded as it streams, not inspected (the log says so).
  }
  let origin: Duplex;
  try {
    if (tls) throw new Error("TLS origins are reached by the inspector");
    origin = await h.connect(t.host, t.port);
  } catch (e) {
    const err = e as Error;
    const f = originFailure(err);
    h.log({
      ...base,
      action: "block",
      rule: null,
      categories: v.categories,
      reason: `${f.reason}: ${err.message.slice(0, 200)}`,
      status: f.status,
    });
    await page(client, head, {
      code: f.code,
      host: t.host,
      url,
      rule: null,
      detail: err.message.slice(0, 200),
    });
    return;
  }
  let status: number | null = null;
  try {
    const extra: [string, string][] = [];
    const sendHead = body
      ? {
        ...head,
        headers: head.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k)),
      }
      : head;
    if (body) extra.push(["Content-Length", String(body.length)]);
    const headBytes = new TextEncoder().encode(originHead(sendHead, t, extra));
    await writeAll(origin, headBytes);
    up = headBytes.length;
    let upload: Promise<number> = Promise.resolve(0);
    if (body) {
      await writeAll(origin, body);
      up += body.length;
    } else if (chunked) {
      upload = pipe(reader, origin, { halfClose: false });
    } else if (length > 0) {
      upload = pipe(reader, origin, { limit: length, halfClose: false });
    }
    const down = await pipe(origin, client, {
      onFirst: (chunk) => {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(new TextDecoder().decode(chunk.subarray(0, 16)));
        status = m ? Number(m[1]) : null;
      },
      halfClose: false,
    });
    closeQuietly(origin);
    up += await upload;
    const uninspectedUpload = body === null &&
      !!(up_ && UPLOAD_METHODS.has(head.method) && (length > 0 || chunked));
    h.logForwarded(base, v, { status, bytesUp: up, bytesDown: down, uninspectedUpload });
  } finally {
    closeQuietly(origin);
  }
}

/** The last path segment without its query, for incidents ("upload.docx"). */
function fileNameOf(path: string): string {
  const p = path.split("?")[0];
  const seg = p.slice(p.lastIndexOf("/") + 1);
  try {
    return decodeURIComponent(seg).slice(0, 200) || "body";
  } catch {
    return seg.slice(0, 200) || "body";
  }
}
