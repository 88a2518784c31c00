/**
 * DNS messages (RFC 1035): parse and build the header, questions and the
 * record types Portcullis serves or forwards (A, AAAA, CNAME, PTR, NS, TXT,
 * SOA; anything else, EDNS OPT included, is kept as raw bytes).
 *
 * Parsing faces hostile input from any tunnel client, so every read is
 * bounds-checked and the only exception it throws is DnsParseError. Name
 * compression pointers must point strictly before the start of the name
 * segment they interrupt, which makes every pointer chain finite (each jump
 * lands lower than the last); a hop cap and the 255-octet name limit bound
 * the work as well.
 *
 * Names are text without the trailing dot ("www.example.com", root is "");
 * label bytes outside letters, digits, "-" and "_" are written in the master
 * file escapes (\. \\ \DDD) so a name always round-trips exactly.
 */
import { InputError } from "../errors.ts";
import { formatIpv4Bytes, formatIpv6Bytes, parseIpv4Text, parseIpv6Text } from "./addr.ts";

/** Resource record type codes. */
export const DNS_TYPE = Object.freeze(
  {
    A: 1,
    NS: 2,
    CNAME: 5,
    SOA: 6,
    PTR: 12,
    MX: 15,
    TXT: 16,
    AAAA: 28,
    SRV: 33,
    OPT: 41,
    HTTPS: 65,
    ANY: 255,
  } as const,
);

/** The Internet class. */
export const DNS_CLASS_IN = 1;

/** Response codes. */
export const DNS_RCODE = Object.freeze(
  {
    NOERROR: 0,
    FORMERR: 1,
    SERVFAIL: 2,
    NXDOMAIN: 3,
    NOTIMP: 4,
    REFUSED: 5,
  } as const,
);

/** Opcode of a standard query. */
export const DNS_OPCODE_QUERY = 0;

/** Size of the fixed header. */
export const DNS_HEADER_SIZE = 12;

/** Why a DNS message could not be parsed. */
export type DnsParseReason =
  | "truncated"
  | "pointer_loop"
  | "bad_label_type"
  | "name_too_long"
  | "bad_rdata";

/** The one error parseDnsMessage throws; `reason` says what was wrong and `offset` where. */
export class DnsParseError extends InputError {
  readonly reason: DnsParseReason;
  readonly offset: number;
  constructor(reason: DnsParseReason, offset: number, detail: string) {
    super("dns_malformed", `Cannot parse DNS message: ${detail} at byte ${offset}`);
    this.reason = reason;
    this.offset = offset;
  }
}

/** The header flags and id (counts are implied by the section arrays). */
export interface DnsHeader {
  id: number;
  /** True for a response. */
  qr: boolean;
  opcode: number;
  /** Authoritative answer. */
  aa: boolean;
  /** Truncated. */
  tc: boolean;
  /** Recursion desired. */
  rd: boolean;
  /** Recursion available. */
  ra: boolean;
  /** Authentic data (RFC 4035). */
  ad: boolean;
  /** Checking disabled (RFC 4035). */
  cd: boolean;
  rcode: number;
}

/** One question. */
export interface DnsQuestion {
  name: string;
  /** Type code (DNS_TYPE). */
  type: number;
  /** Class code (normally DNS_CLASS_IN). */
  class: number;
}

/** Record data by type; anything not modelled is "OTHER" with its type code and raw bytes. */
export type DnsRecordData =
  | { type: "A"; address: string }
  | { type: "AAAA"; address: string }
  | { type: "CNAME" | "PTR" | "NS"; target: string }
  | { type: "TXT"; texts: string[] }
  | {
    type: "SOA";
    mname: string;
    rname: string;
    serial: number;
    refresh: number;
    retry: number;
    expire: number;
    minimum: number;
  }
  | { type: "OTHER"; code: number; data: Uint8Array };

/** A resource record: owner name, class, TTL and typed data. */
export type DnsRecord = DnsRecordData & { name: string; class: number; ttl: number };

/** A whole message. */
export interface DnsMessage {
  header: DnsHeader;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** Returns the type code of a record. */
export function dnsRecordTypeCode(r: DnsRecordData): number {
  return r.type === "OTHER" ? r.code : DNS_TYPE[r.type];
}

/** Returns the mnemonic of a type code ("A", "AAAA", …) or "TYPE<n>". */
export function dnsTypeName(code: number): string {
  for (const [k, v] of Object.entries(DNS_TYPE)) if (v === code) return k;
  return `TYPE${code}`;
}

// ---------------------------------------------------------------------------
// Names

const MAX_POINTER_HOPS = 64;

function escapeLabel(b: Uint8Array, off: number, len: number): string {
  let s = "";
  for (let i = off; i < off + len; i++) {
    const c = b[i];
    if (
      (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
      c === 0x2d || c === 0x5f || c === 0x2a
    ) s += String.fromCharCode(c);
    else if (c === 0x2e || c === 0x5c) s += "\\" + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += "\\" + String(c).padStart(3, "0");
  }
  return s;
}

/** Reads a possibly compressed name at `off`; returns it and the offset after it. */
export function readDnsName(msg: Uint8Array, off: number): { name: string; next: number } {
  let pos = off;
  let segStart = off;
  let next = -1;
  let wire = 0;
  let hops = 0;
  let name = "";
  for (;;) {
    if (pos >= msg.length) throw new DnsParseError("truncated", pos, "name runs past the end");
    const l = msg[pos];
    if ((l & 0xc0) === 0xc0) {
      if (pos + 1 >= msg.length) {
        throw new DnsParseError("truncated", pos, "compression pointer runs past the end");
      }
      const target = ((l & 0x3f) << 8) | msg[pos + 1];
      if (next < 0) next = pos + 2;
      if (target >= segStart || ++hops > MAX_POINTER_HOPS) {
        throw new DnsParseError(
          "pointer_loop",
          pos,
          `compression pointer to ${target} does not point backwards`,
        );
      }
      pos = segStart = target;
      continue;
    }
    if ((l & 0xc0) !== 0) {
      throw new DnsParseError("bad_label_type", pos, `label type 0x${l.toString(16)} is unknown`);
    }
    if (l === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    if (pos + 1 + l > msg.length) {
      throw new DnsParseError("truncated", pos, "label runs past the end");
    }
    wire += l + 1;
    if (wire + 1 > 255) {
      throw new DnsParseError("name_too_long", off, "name is longer than 255 octets");
    }
    name += (name ? "." : "") + escapeLabel(msg, pos + 1, l);
    pos += 1 + l;
  }
  return { name, next };
}

/**
 * Splits a name into label byte arrays, honouring \. \\ and \DDD escapes.
 * Throws InputError for empty labels, labels over 63 octets or names over 255.
 */
export function dnsNameToLabels(name: string): Uint8Array[] {
  let n = name;
  if (n.endsWith(".") && !n.endsWith("\\.")) n = n.slice(0, -1);
  if (n === "") return [];
  const utf8 = new TextEncoder();
  const labels: Uint8Array[] = [];
  let cur: number[] = [];
  let wire = 1;
  const push = () => {
    if (cur.length === 0) {
      throw new InputError("dns_bad_name", `Cannot encode DNS name "${name}": empty label`);
    }
    if (cur.length > 63) {
      throw new InputError(
        "dns_bad_name",
        `Cannot encode DNS name "${name}": label longer than 63 octets`,
      );
    }
    wire += cur.length + 1;
    labels.push(Uint8Array.from(cur));
    cur = [];
  };
  for (let i = 0; i < n.length; i++) {
    const ch = n[i];
    if (ch === ".") push();
    else if (ch === "\\") {
      const dec = n.slice(i + 1, i + 4);
      if (/^\d{3}$/.test(dec) && Number(dec) < 256) {
        cur.push(Number(dec));
        i += 3;
      } else if (i + 1 < n.length) {
        for (const b of utf8.encode(n[i + 1])) cur.push(b);
        i += 1;
      } else {
        throw new InputError("dns_bad_name", `Cannot encode DNS name "${name}": dangling escape`);
      }
    } else {
      for (const b of utf8.encode(ch)) cur.push(b);
    }
  }
  push();
  if (wire > 255) {
    throw new InputError(
      "dns_bad_name",
      `Cannot encode DNS name "${name}": longer than 255 octets`,
    );
  }
  return labels;
}

/** Lowercases ASCII letters and drops one trailing dot: the form used for comparisons. */
export function normalizeDnsName(name: string): string {
  const n = name.endsWith(".") && !name.endsWith("\\.") ? name.slice(0, -1) : name;
  return n.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** True when `name` equals `zone` or lies under it (case-insensitive, label-aligned). */
export function dnsNameInZone(name: string, zone: string): boolean {
  const n = normalizeDnsName(name), z = normalizeDnsName(zone);
  if (z === "") return true;
  return n === z || n.endsWith("." + z);
}

// ---------------------------------------------------------------------------
// Parse

/** Parses the 12-byte header alone; null when fewer than 12 bytes. */
export function parseDnsHeader(msg: Uint8Array): DnsHeader | null {
  if (msg.length < DNS_HEADER_SIZE) return null;
  const f = (msg[2] << 8) | msg[3];
  return {
    id: (msg[0] << 8) | msg[1],
    qr: (f & 0x8000) !== 0,
    opcode: (f >> 11) & 0x0f,
    aa: (f & 0x0400) !== 0,
    tc: (f & 0x0200) !== 0,
    rd: (f & 0x0100) !== 0,
    ra: (f & 0x0080) !== 0,
    ad: (f & 0x0020) !== 0,
    cd: (f & 0x0010) !== 0,
    rcode: f & 0x0f,
  };
}

const textDecoder = new TextDecoder("utf-8", { fatal: false });

function u16(m: Uint8Array, o: number): number {
  return (m[o] << 8) | m[o + 1];
}
function u32(m: Uint8Array, o: number): number {
  return ((m[o] << 24) | (m[o + 1] << 16) | (m[o + 2] << 8) | m[o + 3]) >>> 0;
}

function readRecord(msg: Uint8Array, off: number): { rec: DnsRecord; next: number } {
  const { name, next: p } = readDnsName(msg, off);
  if (p + 10 > msg.length) {
    throw new DnsParseError("truncated", p, "record header runs past the end");
  }
  const type = u16(msg, p);
  const cls = u16(msg, p + 2);
  const ttl = u32(msg, p + 4);
  const rdlen = u16(msg, p + 8);
  const rd = p + 10;
  const end = rd + rdlen;
  if (end > msg.length) throw new DnsParseError("truncated", rd, "record data runs past the end");
  const base = { name, class: cls, ttl };
  const bad = (what: string) => new DnsParseError("bad_rdata", rd, what);
  let data: DnsRecordData;
  const nameAt = (o: number, last: boolean) => {
    const r = readDnsName(msg, o);
    if (r.next > end || (last && r.next !== end)) throw bad("name does not fit the record data");
    return r;
  };
  if (cls === DNS_CLASS_IN && type === DNS_TYPE.A) {
    if (rdlen !== 4) throw bad(`A record data is ${rdlen} bytes, not 4`);
    data = { type: "A", address: formatIpv4Bytes(msg, rd) };
  } else if (cls === DNS_CLASS_IN && type === DNS_TYPE.AAAA) {
    if (rdlen !== 16) throw bad(`AAAA record data is ${rdlen} bytes, not 16`);
    data = { type: "AAAA", address: formatIpv6Bytes(msg, rd) };
  } else if (type === DNS_TYPE.CNAME || type === DNS_TYPE.PTR || type === DNS_TYPE.NS) {
    const t = type === DNS_TYPE.CNAME ? "CNAME" : type === DNS_TYPE.PTR ? "PTR" : "NS";
    data = { type: t, target: nameAt(rd, true).name };
  } else if (type === DNS_TYPE.TXT) {
    const texts: string[] = [];
    for (let o = rd; o < end;) {
      const l = msg[o];
      if (o + 1 + l > end) throw bad("TXT string runs past the record data");
      texts.push(textDecoder.decode(msg.subarray(o + 1, o + 1 + l)));
      o += 1 + l;
    }
    data = { type: "TXT", texts };
  } else if (type === DNS_TYPE.SOA) {
    const m = nameAt(rd, false);
    const r = nameAt(m.next, false);
    if (r.next + 20 !== end) throw bad("SOA record data has the wrong length");
    data = {
      type: "SOA",
      mname: m.name,
      rname: r.name,
      serial: u32(msg, r.next),
      refresh: u32(msg, r.next + 4),
      retry: u32(msg, r.next + 8),
      expire: u32(msg, r.next + 12),
      minimum: u32(msg, r.next + 16),
    };
  } else {
    data = { type: "OTHER", code: type, data: msg.slice(rd, end) };
  }
  return { rec: { ...base, ...data } as DnsRecord, next: end };
}

/**
 * Parses a whole message. Throws DnsParseError (and nothing else) on
 * malformed input; bytes after the last counted record are ignored.
 */
export function parseDnsMessage(msg: Uint8Array): DnsMessage {
  const header = parseDnsHeader(msg);
  if (!header) {
    throw new DnsParseError("truncated", 0, `message of ${msg.length} bytes has no header`);
  }
  const qd = u16(msg, 4), an = u16(msg, 6), ns = u16(msg, 8), ar = u16(msg, 10);
  let o = DNS_HEADER_SIZE;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < qd; i++) {
    const { name, next } = readDnsName(msg, o);
    if (next + 4 > msg.length) {
      throw new DnsParseError("truncated", next, "question runs past the end");
    }
    questions.push({ name, type: u16(msg, next), class: u16(msg, next + 2) });
    o = next + 4;
  }
  const section = (count: number): DnsRecord[] => {
    const out: DnsRecord[] = [];
    for (let i = 0; i < count; i++) {
      const { rec, next } = readRecord(msg, o);
      out.push(rec);
      o = next;
    }
    return out;
  };
  const answers = section(an);
  const authorities = section(ns);
  const additionals = section(ar);
  return { header, questions, answers, authorities, additionals };
}

/** Parses a message, returning the DnsParseError instead of throwing it. */
export function tryParseDnsMessage(msg: Uint8Array): DnsMessage | DnsParseError {
  try {
    return parseDnsMessage(msg);
  } catch (e) {
    if (e instanceof DnsParseError) return e;
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Build

class Writer {
  buf = new Uint8Array(512);
  len = 0;
  ensure(n: number) {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  u8(v: number) {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
  }
  u16(v: number) {
    this.ensure(2);
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
  }
  u32(v: number) {
    this.u16((v >>> 16) & 0xffff);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array) {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
}

/** Options for encodeDnsMessage. */
export interface DnsEncodeOptions {
  /** Compress names with pointers to earlier names; default true. */
  compress?: boolean;
  /**
   * When the message would exceed this many bytes (e.g. 512 for plain UDP),
   * drop every record but EDNS OPT and set TC so the client retries over TCP.
   */
  maxSize?: number;
}

function writeName(w: Writer, name: string, table: Map<string, number> | null): void {
  const labels = dnsNameToLabels(name);
  for (let i = 0; i < labels.length; i++) {
    if (table) {
      // Exact (case-sensitive) match: a pointer must not change the case a client sent (0x20 randomisation).
      const key = labels.slice(i).map((l) => escapeLabel(l, 0, l.length)).join(".");
      const at = table.get(key);
      if (at !== undefined) {
        w.u16(0xc000 | at);
        return;
      }
      if (w.len < 0x4000) table.set(key, w.len);
    }
    w.u8(labels[i].length);
    w.bytes(labels[i]);
  }
  w.u8(0);
}

function writeRecord(w: Writer, r: DnsRecord, table: Map<string, number> | null): void {
  writeName(w, r.name, table);
  w.u16(dnsRecordTypeCode(r));
  w.u16(r.class);
  w.u32(r.ttl >>> 0);
  const lenAt = w.len;
  w.u16(0);
  const start = w.len;
  switch (r.type) {
    case "A": {
      const a = parseIpv4Text(r.address);
      if (!a) {
        throw new InputError(
          "dns_bad_record",
          `Cannot encode A record "${r.name}": "${r.address}" is not IPv4`,
        );
      }
      w.bytes(a);
      break;
    }
    case "AAAA": {
      const a = parseIpv6Text(r.address);
      if (!a) {
        throw new InputError(
          "dns_bad_record",
          `Cannot encode AAAA record "${r.name}": "${r.address}" is not IPv6`,
        );
      }
      w.bytes(a);
      break;
    }
    case "CNAME":
    case "PTR":
    case "NS":
      writeName(w, r.target, table);
      break;
    case "TXT": {
      const enc = new TextEncoder();
      for (const t of r.texts) {
        const b = enc.encode(t);
        if (b.length > 255) {
          throw new InputError(
            "dns_bad_record",
            `Cannot encode TXT record "${r.name}": a string is longer than 255 bytes`,
          );
        }
        w.u8(b.length);
        w.bytes(b);
      }
      break;
    }
    case "SOA":
      writeName(w, r.mname, table);
      writeName(w, r.rname, table);
      w.u32(r.serial);
      w.u32(r.refresh);
      w.u32(r.retry);
      w.u32(r.expire);
      w.u32(r.minimum);
      break;
    case "OTHER":
      w.bytes(r.data);
      break;
  }
  const rdlen = w.len - start;
  if (rdlen > 0xffff) {
    throw new InputError("dns_bad_record", `Cannot encode record "${r.name}": data too long`);
  }
  w.buf[lenAt] = rdlen >> 8;
  w.buf[lenAt + 1] = rdlen & 0xff;
}

function encodeOnce(m: DnsMessage, compress: boolean): Uint8Array {
  const w = new Writer();
  const h = m.header;
  w.u16(h.id);
  w.u16(
    (h.qr ? 0x8000 : 0) | ((h.opcode & 0x0f) << 11) | (h.aa ? 0x0400 : 0) | (h.tc ? 0x0200 : 0) |
      (h.rd ? 0x0100 : 0) | (h.ra ? 0x0080 : 0) | (h.ad ? 0x0020 : 0) | (h.cd ? 0x0010 : 0) |
      (h.rcode & 0x0f),
  );
  for (
    const n of [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length]
  ) {
    if (n > 0xffff) {
      throw new InputError(
        "dns_bad_message",
        `Cannot encode DNS message: ${n} entries in a section`,
      );
    }
    w.u16(n);
  }
  const table = compress ? new Map<string, number>() : null;
  for (const q of m.questions) {
    writeName(w, q.name, table);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const r of m.answers) writeRecord(w, r, table);
  for (const r of m.authorities) writeRecord(w, r, table);
  for (const r of m.additionals) writeRecord(w, r, table);
  return w.buf.slice(0, w.len);
}

/** Encodes a message; throws InputError for names or records that cannot be encoded. */
export function encodeDnsMessage(m: DnsMessage, opts: DnsEncodeOptions = {}): Uint8Array {
  const compress = opts.compress ?? true;
  const out = encodeOnce(m, compress);
  if (opts.maxSize === undefined || out.length <= opts.maxSize) return out;
  return encodeOnce({
    header: { ...m.header, tc: true },
    questions: m.questions,
    answers: [],
    authorities: [],
    additionals: m.additionals.filter((r) => r.type === "OTHER" && r.code === DNS_TYPE.OPT),
  }, compress);
}

/** Returns a query header with a given id (recursion desired by default). */
export function dnsQueryHeader(id: number, rd = true): DnsHeader {
  return {
    id: id & 0xffff,
    qr: false,
    opcode: DNS_OPCODE_QUERY,
    aa: false,
    tc: false,
    rd,
    ra: false,
    ad: false,
    cd: false,
    rcode: 0,
  };
}

/** Encodes a one-question query for `name`/`type` (class IN). */
export function buildDnsQuery(name: string, type: number, id: number, rd = true): Uint8Array {
  return encodeDnsMessage({
    header: dnsQueryHeader(id, rd),
    questions: [{ name, type, class: DNS_CLASS_IN }],
    answers: [],
    authorities: [],
    additionals: [],
  });
}

/** Fields of a response that differ from the query it answers. */
export interface DnsResponseOptions {
  rcode?: number;
  /** Authoritative answer; default false. */
  aa?: boolean;
  /** Recursion available; default false. */
  ra?: boolean;
  answers?: DnsRecord[];
  authorities?: DnsRecord[];
  additionals?: DnsRecord[];
}

/** Builds the response to `query`: same id, opcode, RD, CD and questions. */
export function dnsResponseTo(query: DnsMessage, o: DnsResponseOptions = {}): DnsMessage {
  return {
    header: {
      id: query.header.id,
      qr: true,
      opcode: query.header.opcode,
      aa: o.aa ?? false,
      tc: false,
      rd: query.header.rd,
      ra: o.ra ?? false,
      ad: false,
      cd: query.header.cd,
      rcode: o.rcode ?? DNS_RCODE.NOERROR,
    },
    questions: query.questions,
    answers: o.answers ?? [],
    authorities: o.authorities ?? [],
    additionals: o.additionals ?? [],
  };
}

/**
 * A header-only error response (FORMERR, NOTIMP, REFUSED…) to the raw query
 * `raw`, echoing its id, opcode and RD; null when `raw` has no header.
 * Used when the query cannot be parsed, so the question is not echoed.
 */
export function dnsErrorResponse(raw: Uint8Array, rcode: number): Uint8Array | null {
  const h = parseDnsHeader(raw);
  if (!h) return null;
  return encodeDnsMessage({
    header: { ...h, qr: true, aa: false, tc: false, ra: false, ad: false, rcode },
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  });
}
