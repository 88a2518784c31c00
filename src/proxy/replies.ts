/**
 * What the engine itself answers on a plain connection: a 400 with a
 * machine-readable code and a sentence, the block/caution page, a redirect.
 * Every answer ends the connection; a client already gone is not an error.
 */
import { type PageReason, pageResponse } from "./block_page.ts";
import { header, type RequestHead } from "./http_head.ts";
import { type Duplex, writeAll } from "./stream.ts";

/** 400 Bad Request with `{error, message}`. */
export async function badRequest(client: Duplex, code: string, e: Error): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify({ error: code, message: e.message }));
  const head = new TextEncoder().encode(
    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n" +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
  );
  // One write: head and body in one segment.
  const all = new Uint8Array(head.length + body.length);
  all.set(head);
  all.set(body, head.length);
  await writeAll(client, all).catch(() => {});
}

/** The block or caution page in the client's language (HTML, or JSON for API clients). */
export async function page(client: Duplex, head: RequestHead, r: PageReason): Promise<void> {
  await writeAll(
    client,
    pageResponse(r, header(head, "accept"), header(head, "accept-language")),
  ).catch(() => {});
}

/** 302 to `location` (never cached). */
export async function redirect(client: Duplex, location: string): Promise<void> {
  await writeAll(
    client,
    new TextEncoder().encode(
      `HTTP/1.1 302 Found\r\nLocation: ${location}\r\nContent-Length: 0\r\n` +
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
    ),
  ).catch(() => {});
}
