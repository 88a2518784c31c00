/**
 * Classic libpcap files (not pcapng): a bounded writer for packet capture
 * from the data plane and a reader for tests and diagnostics.
 *
 * Format: a 24-byte global header (magic 0xa1b2c3d4 = microsecond
 * timestamps, version 2.4, snaplen, link type) then per packet a 16-byte
 * record header (seconds, microseconds, captured length, original length)
 * and the captured bytes. We write little-endian and LINKTYPE_RAW (101):
 * packets start at the IP header, which is exactly what a TUN device
 * carries. Encoding is pure; the only I/O is the injectable PcapSink.
 */
import { InputError } from "../errors.ts";

/** Link type for raw IPv4/IPv6 packets with no link-layer header. */
export const LINKTYPE_RAW = 101;
/** Magic number of a microsecond-resolution pcap file. */
export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
/** Magic number of a nanosecond-resolution pcap file (read only). */
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;
/** Size of the global header. */
export const PCAP_GLOBAL_HEADER_SIZE = 24;
/** Size of each record header. */
export const PCAP_RECORD_HEADER_SIZE = 16;

/** Encodes the 24-byte little-endian global header. */
export function encodePcapGlobalHeader(snaplen = 65535, linktype = LINKTYPE_RAW): Uint8Array {
  const b = new Uint8Array(PCAP_GLOBAL_HEADER_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, PCAP_MAGIC_USEC, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setInt32(8, 0, true); // thiszone: timestamps are UTC
  v.setUint32(12, 0, true); // sigfigs
  v.setUint32(16, snaplen, true);
  v.setUint32(20, linktype, true);
  return b;
}

/** Writes a 16-byte record header into `out` at `off` for a packet captured at `tsMicros`. */
export function encodePcapRecordHeader(
  out: Uint8Array,
  off: number,
  tsMicros: number,
  capturedLength: number,
  originalLength: number,
): void {
  const v = new DataView(out.buffer, out.byteOffset + off, PCAP_RECORD_HEADER_SIZE);
  const sec = Math.floor(tsMicros / 1e6);
  v.setUint32(0, sec >>> 0, true);
  v.setUint32(4, Math.floor(tsMicros - sec * 1e6), true);
  v.setUint32(8, capturedLength, true);
  v.setUint32(12, originalLength, true);
}

/** Where encoded pcap bytes go: a file, or memory in tests. */
export interface PcapSink {
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): void;
  /** Releases the sink; idempotent. */
  close(): void;
}

/** A PcapSink that keeps everything in memory. */
export class MemoryPcapSink implements PcapSink {
  #chunks: Uint8Array[] = [];
  /** Whether close() was called. */
  closed = false;
  /** Appends a copy of `bytes`. */
  write(bytes: Uint8Array): void {
    this.#chunks.push(bytes.slice());
  }
  /** Marks the sink closed. */
  close(): void {
    this.closed = true;
  }
  /** Returns everything written so far as one array. */
  bytes(): Uint8Array {
    const n = this.#chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** Opens (creating or truncating) a file as a PcapSink; synchronous writes. */
export function filePcapSink(path: string): PcapSink {
  const f = Deno.openSync(path, { write: true, create: true, truncate: true, mode: 0o600 });
  let closed = false;
  return {
    write(bytes) {
      let o = 0;
      while (o < bytes.length) o += f.writeSync(bytes.subarray(o));
    },
    close() {
      if (closed) return;
      closed = true;
      f.close();
    },
  };
}

/** Limits and clock for a PcapWriter. */
export interface PcapWriterOptions {
  /** Bytes kept per packet (longer packets are cut, keeping their original length); default 65535. */
  snaplen?: number;
  /** Stop writing once the file would exceed this many bytes (global header included); default 100 MiB. */
  maxBytes?: number;
  /** Stop writing after this many packets; default unlimited. */
  maxPackets?: number;
  /** Current time in microseconds since the epoch; default the system wall clock. */
  nowMicros?: () => number;
}

const defaultNowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

/**
 * Appends packets to a pcap sink until a size or count limit is reached,
 * after which packets are counted as dropped and the writer reports `full`.
 */
export class PcapWriter {
  readonly snaplen: number;
  readonly maxBytes: number;
  readonly maxPackets: number;
  #sink: PcapSink;
  #now: () => number;
  #scratch: Uint8Array;
  #bytes = PCAP_GLOBAL_HEADER_SIZE;
  #packets = 0;
  #dropped = 0;
  #closed = false;
  #limitHit = false;

  constructor(sink: PcapSink, opts: PcapWriterOptions = {}) {
    this.snaplen = opts.snaplen ?? 65535;
    this.maxBytes = opts.maxBytes ?? 100 * 1024 * 1024;
    this.maxPackets = opts.maxPackets ?? Number.POSITIVE_INFINITY;
    if (!Number.isInteger(this.snaplen) || this.snaplen < 1 || this.snaplen > 262144) {
      throw new InputError(
        "bad_snaplen",
        `Cannot open pcap writer: snaplen ${this.snaplen} is out of range 1-262144`,
      );
    }
    if (this.maxBytes < PCAP_GLOBAL_HEADER_SIZE) {
      throw new InputError(
        "bad_max_bytes",
        `Cannot open pcap writer: max bytes ${this.maxBytes} is below the 24-byte header`,
      );
    }
    this.#sink = sink;
    this.#now = opts.nowMicros ?? defaultNowMicros;
    this.#scratch = new Uint8Array(PCAP_RECORD_HEADER_SIZE + this.snaplen);
    sink.write(encodePcapGlobalHeader(this.snaplen));
  }

  /** Creates (or truncates) `path` and returns a writer on it. */
  static open(path: string, opts: PcapWriterOptions = {}): PcapWriter {
    return new PcapWriter(filePcapSink(path), opts);
  }

  /** Packets written. */
  get packets(): number {
    return this.#packets;
  }
  /** Bytes written, global header included. */
  get bytes(): number {
    return this.#bytes;
  }
  /** Packets refused because a limit was reached or the writer was closed. */
  get dropped(): number {
    return this.#dropped;
  }
  /** True once a limit has been reached (a packet was refused for size, or the count is used up). */
  get full(): boolean {
    return this.#limitHit || this.#packets >= this.maxPackets ||
      this.#bytes + PCAP_RECORD_HEADER_SIZE > this.maxBytes;
  }

  /**
   * Writes `buf[off .. off+len]` as one record; returns false (and counts a
   * drop) when a limit would be exceeded or the writer is closed.
   */
  write(buf: Uint8Array, off = 0, len = buf.length - off, tsMicros = this.#now()): boolean {
    const cap = Math.min(len, this.snaplen);
    const rec = PCAP_RECORD_HEADER_SIZE + cap;
    if (this.#closed || this.#packets >= this.maxPackets || this.#bytes + rec > this.maxBytes) {
      if (!this.#closed) this.#limitHit = true;
      this.#dropped++;
      return false;
    }
    encodePcapRecordHeader(this.#scratch, 0, tsMicros, cap, len);
    this.#scratch.set(buf.subarray(off, off + cap), PCAP_RECORD_HEADER_SIZE);
    this.#sink.write(this.#scratch.subarray(0, rec));
    this.#bytes += rec;
    this.#packets++;
    return true;
  }

  /** Closes the sink; later writes are dropped. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink.close();
  }
}

/** One packet read back from a pcap file. */
export interface PcapPacket {
  /** Seconds since the epoch. */
  tsSec: number;
  /** Sub-second part in microseconds (converted from nanoseconds when needed). */
  tsUsec: number;
  /** Length of the packet on the wire. */
  originalLength: number;
  /** The captured bytes (a copy). */
  data: Uint8Array;
}

/** A parsed pcap file. */
export interface PcapFile {
  snaplen: number;
  linktype: number;
  /** True when the file used nanosecond timestamps. */
  nanosecond: boolean;
  packets: PcapPacket[];
}

/** Parses a classic pcap file of either byte order; throws InputError naming the problem. */
export function readPcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < PCAP_GLOBAL_HEADER_SIZE) {
    throw new InputError(
      "bad_pcap",
      `Cannot read pcap: ${bytes.length} bytes is shorter than the header`,
    );
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le: boolean;
  let nano: boolean;
  const m = v.getUint32(0, true);
  if (m === PCAP_MAGIC_USEC || m === PCAP_MAGIC_NSEC) {
    le = true;
    nano = m === PCAP_MAGIC_NSEC;
  } else {
    const mb = v.getUint32(0, false);
    if (mb !== PCAP_MAGIC_USEC && mb !== PCAP_MAGIC_NSEC) {
      throw new InputError(
        "bad_pcap",
        `Cannot read pcap: magic 0x${m.toString(16)} is not a pcap file`,
      );
    }
    le = false;
    nano = mb === PCAP_MAGIC_NSEC;
  }
  const snaplen = v.getUint32(16, le);
  const linktype = v.getUint32(20, le) & 0x0fffffff;
  const packets: PcapPacket[] = [];
  let o = PCAP_GLOBAL_HEADER_SIZE;
  while (o < bytes.length) {
    if (o + PCAP_RECORD_HEADER_SIZE > bytes.length) {
      throw new InputError("bad_pcap", `Cannot read pcap: record header at byte ${o} is truncated`);
    }
    const sec = v.getUint32(o, le);
    const frac = v.getUint32(o + 4, le);
    const incl = v.getUint32(o + 8, le);
    const orig = v.getUint32(o + 12, le);
    o += PCAP_RECORD_HEADER_SIZE;
    if (o + incl > bytes.length) {
      throw new InputError(
        "bad_pcap",
        `Cannot read pcap: packet of ${incl} bytes at byte ${o} is truncated`,
      );
    }
    packets.push({
      tsSec: sec,
      tsUsec: nano ? Math.floor(frac / 1000) : frac,
      originalLength: orig,
      data: bytes.slice(o, o + incl),
    });
    o += incl;
  }
  return { snaplen, linktype, nanosecond: nano, packets };
}
