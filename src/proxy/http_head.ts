/**
 * HTTP/1.1 request heads as the forward proxy reads them off a raw TCP
 * stream: the request line (absolute-form from explicit proxy clients,
 * authority-form for CONNECT, origin-form on transparent flows) and the
 * header fields, bounded in size. Pure; a malformed head is an InputError
 * with a code the engine turns into a 400.
 */
import { InputError } from "../errors.ts";

/** Largest request head accepted (64 KiB). */
export const MAX_HEAD = 64 * 1024;

/** A parsed request head. */
export interface RequestHead {
  method: string;
  /** The request target as sent. */
  target: string;
  version: string;
  /** Header fields in order, names as sent. */
  headers: [string, string][];
}

/** Where the request goes, from its target and Host header. */
export interface RequestTarget {
  /** "connect" for CONNECT, "absolute" for a proxy request, "origin" for a transparent one. */
  form: "connect" | "absolute" | "origin";
  scheme: "http" | "https";
  host: string;
  port: number;
  /** Path and query ("/" for CONNECT). */
  path: string;
}

/** Index just past the blank line ending the head, or -1. */
export function headEnd(b: Uint8Array): number {
  for (let i = 3; i < b.length; i++) {
    if (b[i] === 10 && b[i - 1] === 13 && b[i - 2] === 10 && b[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** An HTTP token (method, header name), RFC 9110 §5.6.2. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses the head (bytes up to and including the blank line). */
export function parseHead(bytes: Uint8Array): RequestHead {
  const text = new TextDecoder("latin1").decode(bytes);
  const lines = text.split("\r\n");
  const [method, target, version, ...rest] = lines[0].split(" ");
  if (
    !method || !TOKEN.test(method) || !target || rest.length ||
    !/^HTTP\/1\.[01]$/.test(version ?? "")
  ) {
    throw new InputError(
      "bad_request_line",
      `Cannot read the request line "${lines[0].slice(0, 100)}"`,
    );
  }
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const c = line.indexOf(":");
    const name = c > 0 ? line.slice(0, c) : "";
    if (!TOKEN.test(name)) {
      throw new InputError("bad_header", `Cannot read the header line "${line.slice(0, 100)}"`);
    }
    headers.push([name, line.slice(c + 1).trim()]);
  }
  return { method, target, version, headers };
}

/** The first value of header `name` (case-insensitive). */
export function header(h: RequestHead, name: string): string | null {
  const n = name.toLowerCase();
  return h.headers.find(([k]) => k.toLowerCase() === n)?.[1] ?? null;
}

function splitAuthority(a: string, defaultPort: number): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]{1,253})(?::(\d{1,5}))?$/.exec(a);
  const port = m?.[2] ? Number(m[2]) : defaultPort;
  if (!m || port < 1 || port > 65535) {
    throw new InputError("bad_host", `Cannot read the host "${a.slice(0, 100)}"`);
  }
  return { host: m[1].replace(/^\[|\]$/g, "").toLowerCase(), port };
}

/** Works out where the request goes; `tlsOrigin` marks a request already inside TLS. */
export function targetOf(h: RequestHead, tlsOrigin = false): RequestTarget {
  if (h.method === "CONNECT") {
    const { host, port } = splitAuthority(h.target, 443);
    return { form: "connect", scheme: "https", host, port, path: "/" };
  }
  if (/^https?:\/\//i.test(h.target)) {
    let u: URL;
    try {
      u = new URL(h.target);
    } catch {
      throw new InputError(
        "bad_target",
        `Cannot read the request target "${h.target.slice(0, 100)}"`,
      );
    }
    const scheme = u.protocol === "https:" ? "https" : "http";
    const { host, port } = splitAuthority(u.host, scheme === "https" ? 443 : 80);
    return { form: "absolute", scheme, host, port, path: `${u.pathname}${u.search}` };
  }
  if (!h.target.startsWith("/")) {
    throw new InputError(
      "bad_target",
      `Cannot read the request target "${h.target.slice(0, 100)}"`,
    );
  }
  const hostHeader = header(h, "host");
  if (!hostHeader) {
    throw new InputError("missing_host", "Cannot forward a request without a Host header");
  }
  const scheme = tlsOrigin ? "https" : "http";
  const { host, port } = splitAuthority(hostHeader, scheme === "https" ? 443 : 80);
  return { form: "origin", scheme, host, port, path: h.target };
}

/** Hop-by-hop and proxy headers never forwarded to the origin. */
const HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "upgrade",
]);

/** The head sent to the origin: origin-form, hop-by-hop headers dropped, one request per connection. */
export function originHead(
  h: RequestHead,
  t: RequestTarget,
  extra: [string, string][] = [],
): string {
  const dropped = new Set(HOP);
  for (const [k, v] of h.headers) {
    if (k.toLowerCase() === "connection") {
      for (const t of v.split(",")) dropped.add(t.trim().toLowerCase());
    }
  }
  const lines = [`${h.method} ${t.path} HTTP/1.1`];
  for (const [k, v] of h.headers) if (!dropped.has(k.toLowerCase())) lines.push(`${k}: ${v}`);
  for (const [k, v] of extra) lines.push(`${k}: ${v}`);
  lines.push("Connection: close", "", "");
  return lines.join("\r\n");
}
