/**
 * Packet capture of the tunnel interface for troubleshooting: the data-plane
 * pump's tap hands every packet that crosses the TUN device to a pcap writer
 * (LINKTYPE_RAW, src/packet/pcap.ts) writing a file under the data
 * directory. One capture at a time, bounded in size and duration so a
 * forgotten capture cannot fill the disk; the newest few files are kept for
 * download and for the log export.
 *
 * The tap runs on the pump's hot path, so it does no more than one
 * synchronous append; stopping on a limit is deferred to a microtask.
 */
import { type Clock, systemClock } from "../clock.ts";
import { InputError, NotFoundError } from "../errors.ts";
import { logger } from "../log.ts";
import { PcapWriter } from "../packet/pcap.ts";

const log = logger("capture");

/** The tap signature of the data-plane pump (src/dataplane/pump.ts `TapFn`). */
export type CaptureTap = (
  direction: "in" | "out",
  buf: Uint8Array,
  offset: number,
  length: number,
) => void;

/** Something whose packets can be tapped: the pump (`Pump.setTap`). */
export interface TapSource {
  /** Starts (fn) or stops (null) handing every tunnel packet to `fn`. */
  setTap(fn: CaptureTap | null): void;
}

/** Why a capture ended. */
export type StopReason = "user" | "size" | "duration" | "shutdown";

/** A capture, running or finished. */
export interface CaptureInfo {
  id: string;
  /** File name inside the capture directory. */
  file: string;
  startedAt: number;
  stoppedAt: number | null;
  running: boolean;
  packets: number;
  /** File size in bytes (pcap headers included). */
  bytes: number;
  /** Packets not written because a limit was reached. */
  dropped: number;
  stopReason: StopReason | null;
}

/** Options of a CaptureController. */
export interface CaptureOptions {
  /** Directory for pcap files (created when needed), e.g. `<dataDir>/captures`. */
  dir: string;
  /** The pump to tap, or a function returning it (null while no tunnel exists). */
  source: TapSource | (() => TapSource | null);
  /** Largest file in bytes; default 32 MiB. */
  maxBytes?: number;
  /** Longest capture in ms; default 10 minutes. */
  maxDurationMs?: number;
  /** Finished captures kept on disk; default 5. */
  keep?: number;
  /** Bytes kept per packet; default 65535. */
  snaplen?: number;
  clock?: Clock;
}

const ID = /^cap-\d{8}T\d{6}Z-[a-z0-9]{4}$/;

/** Starts, stops, lists and reads packet captures; one at a time. */
export class CaptureController {
  readonly dir: string;
  readonly maxBytes: number;
  readonly maxDurationMs: number;
  readonly keep: number;
  #opts: CaptureOptions;
  #clock: Clock;
  #current:
    | {
      info: CaptureInfo;
      writer: PcapWriter;
      source: TapSource;
      timer: ReturnType<typeof setTimeout>;
    }
    | null = null;
  #finished = new Map<string, CaptureInfo>();

  constructor(opts: CaptureOptions) {
    this.#opts = opts;
    this.dir = opts.dir;
    this.maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
    this.maxDurationMs = opts.maxDurationMs ?? 10 * 60_000;
    this.keep = opts.keep ?? 5;
    this.#clock = opts.clock ?? systemClock;
  }

  /** The running capture, or null. */
  current(): CaptureInfo | null {
    if (!this.#current) return null;
    const { info, writer } = this.#current;
    return { ...info, packets: writer.packets, bytes: writer.bytes, dropped: writer.dropped };
  }

  /** Starts a capture; refuses a second one (409) and a missing tunnel (503). */
  start(): CaptureInfo {
    if (this.#current) {
      throw new InputError(
        "capture_running",
        `Cannot start a packet capture: capture ${this.#current.info.id} is still running`,
        409,
      );
    }
    const src = typeof this.#opts.source === "function" ? this.#opts.source() : this.#opts.source;
    if (!src) {
      throw new InputError(
        "tunnel_not_running",
        "Cannot start a packet capture: the tunnel interface is not up",
        503,
      );
    }
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const now = this.#clock.now();
    const stamp = new Date(now).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    const id = `cap-${stamp}-${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`;
    const file = `${id}.pcap`;
    const writer = PcapWriter.open(`${this.dir}/${file}`, {
      maxBytes: this.maxBytes,
      snaplen: this.#opts.snaplen,
    });
    const info: CaptureInfo = {
      id,
      file,
      startedAt: now,
      stoppedAt: null,
      running: true,
      packets: 0,
      bytes: writer.bytes,
      dropped: 0,
      stopReason: null,
    };
    let stopping = false;
    const tap: CaptureTap = (_dir, buf, off, len) => {
      if (!writer.write(buf, off, len) && writer.full && !stopping) {
        stopping = true;
        queueMicrotask(() => this.#stopIf(id, "size"));
      }
    };
    const timer = setTimeout(() => this.#stopIf(id, "duration"), this.maxDurationMs);
    Deno.unrefTimer(timer);
    this.#current = { info, writer, source: src, timer };
    src.setTap(tap);
    log.info("packet capture started", { id, maxBytes: this.maxBytes });
    return this.current()!;
  }

  #stopIf(id: string, reason: StopReason): void {
    if (this.#current?.info.id === id) this.stop(reason);
  }

  /** Stops the running capture; returns it, or null when none was running. */
  stop(reason: StopReason = "user"): CaptureInfo | null {
    const cur = this.#current;
    if (!cur) return null;
    this.#current = null;
    cur.source.setTap(null);
    clearTimeout(cur.timer);
    cur.writer.close();
    const info: CaptureInfo = {
      ...cur.info,
      running: false,
      stoppedAt: this.#clock.now(),
      packets: cur.writer.packets,
      bytes: cur.writer.bytes,
      dropped: cur.writer.dropped,
      stopReason: reason,
    };
    this.#finished.set(info.id, info);
    log.info("packet capture stopped", {
      id: info.id,
      reason,
      packets: info.packets,
      bytes: info.bytes,
    });
    this.#prune();
    return info;
  }

  /** Captures on disk (and the running one), newest first. */
  list(): CaptureInfo[] {
    const out: CaptureInfo[] = [];
    const cur = this.current();
    if (cur) out.push(cur);
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(this.dir)];
    } catch {
      return out;
    }
    for (const e of entries) {
      const id = e.name.replace(/\.pcap$/, "");
      if (!e.isFile || !e.name.endsWith(".pcap") || !ID.test(id) || id === cur?.id) continue;
      const known = this.#finished.get(id);
      let size = 0, mtime = 0;
      try {
        const st = Deno.statSync(`${this.dir}/${e.name}`);
        size = st.size;
        mtime = st.mtime?.getTime() ?? 0;
      } catch {
        continue;
      }
      out.push(
        known ?? {
          id,
          file: e.name,
          startedAt: parseStamp(id) ?? mtime,
          stoppedAt: mtime,
          running: false,
          packets: -1,
          bytes: size,
          dropped: 0,
          stopReason: null,
        },
      );
    }
    return out.sort((a, b) => b.startedAt - a.startedAt || b.id.localeCompare(a.id));
  }

  /** Reads a finished capture's file; 404 for an unknown id, 409 while it is still running. */
  async read(id: string): Promise<Uint8Array> {
    if (!ID.test(id)) {
      throw new NotFoundError(
        "capture_not_found",
        `Cannot find packet capture "${id.slice(0, 64)}"`,
      );
    }
    if (this.#current?.info.id === id) {
      throw new InputError(
        "capture_running",
        `Cannot download packet capture ${id}: stop it first`,
        409,
      );
    }
    try {
      return await Deno.readFile(`${this.dir}/${id}.pcap`);
    } catch {
      throw new NotFoundError("capture_not_found", `Cannot find packet capture "${id}"`);
    }
  }

  /** Stops a running capture (at shutdown). */
  close(): void {
    this.stop("shutdown");
  }

  #prune(): void {
    const done = this.list().filter((c) => !c.running);
    for (const old of done.slice(this.keep)) {
      try {
        Deno.removeSync(`${this.dir}/${old.file}`);
        this.#finished.delete(old.id);
      } catch {
        // already gone
      }
    }
  }
}

function parseStamp(id: string): number | null {
  const m = /^cap-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : null;
}
