/**
 * The fanotify guard: one fanotify group with permission events
 * (FAN_CLASS_CONTENT) marking whole mounts for FAN_CLOSE_WRITE and
 * FAN_OPEN_PERM. Mechanism only: it reads events, hands each finished write
 * (with the file's bytes, read through the event's own descriptor) to the
 * handler, and answers every open-permission request with the handler's
 * verdict — which may be a promise, while the file is being inspected.
 *
 * Why read through the event descriptor: the kernel opens it without
 * notification, so reading it raises no event. Opening the path again from
 * this process would raise FAN_OPEN_PERM for ourselves and wait for an
 * answer only we can give. For the same reason nothing else in this process
 * may open files on a marked mount (the agent refuses to mark the mount that
 * holds the connector's data directory).
 *
 * Every permission event is answered, errors included (then: allow), since
 * an unanswered one leaves the opening process waiting.
 */
import {
  AT_FDCWD,
  EVENT_F_FLAGS,
  EVENT_METADATA_SIZE,
  FAN_ALLOW,
  FAN_CLASS_CONTENT,
  FAN_CLOEXEC,
  FAN_CLOSE_WRITE,
  FAN_DENY,
  FAN_MARK_ADD,
  FAN_MARK_MOUNT,
  FAN_NONBLOCK,
  FAN_OPEN_PERM,
  FAN_Q_OVERFLOW,
  FANOTIFY_METADATA_VERSION,
  FANOTIFY_SYMBOLS,
  type FanotifyLib,
  RESPONSE_SIZE,
  SEEK_END,
} from "../../../ffi/fanotify.ts";
import { libc, syscallError } from "../../net/errno.ts";
import type { Poller } from "../../net/poller.ts";
import { POLLIN } from "../../net/poller.ts";
import { logger } from "../../log.ts";

const log = logger("dlp.fanotify");

let lib: FanotifyLib | undefined;
function fan(): FanotifyLib {
  return lib ??= Deno.dlopen("libc.so.6", FANOTIFY_SYMBOLS).symbols;
}

/** A finished write on a marked mount. */
export interface ClosedFile {
  path: string;
  pid: number;
  size: number;
  /** The bytes, or null when the file is larger than the read limit. */
  bytes: Uint8Array | null;
  /** Device and inode while the event held it, so a later unlink hits this file only. */
  dev: number;
  ino: number;
}

/** What the guard asks of its owner. */
export interface GuardHandler {
  /** A file opened for writing was closed. */
  closed(file: ClosedFile): void;
  /** May `pid` open `path`? Answer now, or later through a promise (the opener waits). */
  mayOpen(path: string, pid: number): boolean | Promise<boolean>;
}

const cstr = (s: string) => new TextEncoder().encode(s + "\0");

/** The fanotify group over the watched mounts. */
export class FanotifyGuard {
  #fd: number;
  #buf = new Uint8Array(64 * 1024);
  #view = new DataView(this.#buf.buffer);
  #resp = new Uint8Array(RESPONSE_SIZE);
  #respView = new DataView(this.#resp.buffer);
  #marked = new Set<string>();
  #maxRead: number;

  private constructor(fd: number, maxRead: number) {
    this.#fd = fd;
    this.#maxRead = maxRead;
  }

  /**
   * Opens a fanotify group with permission events; throws a SyscallError
   * (EPERM without CAP_SYS_ADMIN, EINVAL when the kernel lacks permission
   * events, ENOSYS without fanotify) that the caller turns into report-only.
   */
  static open(maxRead: number): FanotifyGuard {
    if (Deno.build.os !== "linux") {
      throw new Error(`fanotify is Linux only, not ${Deno.build.os}`);
    }
    const fd = fan().fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, EVENT_F_FLAGS);
    if (fd < 0) throw syscallError("fanotify_init", "open a fanotify group with permission events");
    return new FanotifyGuard(fd, maxRead);
  }

  /** The group's descriptor (for a poller). */
  get fd(): number {
    return this.#fd;
  }

  /** Marks the mount at `mountPoint` for finished writes and open permission. */
  mark(mountPoint: string): void {
    if (this.#marked.has(mountPoint)) return;
    const r = fan().fanotify_mark(
      this.#fd,
      FAN_MARK_ADD | FAN_MARK_MOUNT,
      BigInt(FAN_CLOSE_WRITE | FAN_OPEN_PERM),
      AT_FDCWD,
      cstr(mountPoint),
    );
    if (r < 0) throw syscallError("fanotify_mark", `watch mount "${mountPoint}"`);
    this.#marked.add(mountPoint);
  }

  /** Forgets a mount (the kernel drops its mark when it is unmounted). */
  forget(mountPoint: string): void {
    this.#marked.delete(mountPoint);
  }

  /** Mount points marked. */
  get marked(): string[] {
    return [...this.#marked];
  }

  /** Registers the group with `poller` for reading. */
  watchWith(poller: Poller): void {
    poller.add(this.#fd, POLLIN);
  }

  /** Reads and dispatches every queued event (call when the poller says readable). */
  drain(h: GuardHandler): number {
    let handled = 0;
    for (;;) {
      const n = libc().read(this.#fd, this.#buf, BigInt(this.#buf.length));
      if (n <= 0) return handled; // EAGAIN: queue empty
      let off = 0;
      while (off + EVENT_METADATA_SIZE <= n) {
        const len = this.#view.getUint32(off, true);
        const vers = this.#buf[off + 4];
        if (len < EVENT_METADATA_SIZE || vers !== FANOTIFY_METADATA_VERSION) {
          log.error("Unexpected fanotify event layout", { len, vers });
          return handled;
        }
        const mask = Number(this.#view.getBigUint64(off + 8, true));
        const fd = this.#view.getInt32(off + 16, true);
        const pid = this.#view.getInt32(off + 20, true);
        off += len;
        handled++;
        if (mask & FAN_Q_OVERFLOW) {
          log.warn("fanotify queue overflowed: some file events were lost");
          continue;
        }
        if (fd < 0) continue;
        this.#event(mask, fd, pid, h);
      }
    }
  }

  #event(mask: number, fd: number, pid: number, h: GuardHandler): void {
    let path = "";
    try {
      path = Deno.readLinkSync(`/proc/self/fd/${fd}`).replace(/ \(deleted\)$/, "");
    } catch {
      // gone already: allow and move on
    }
    if (mask & FAN_CLOSE_WRITE) {
      try {
        if (path) h.closed(this.#read(fd, path, pid));
      } catch (err) {
        log.warn("Cannot read a written file", { path, error: (err as Error).message });
      }
    }
    if (mask & FAN_OPEN_PERM) {
      let verdict: boolean | Promise<boolean> = true;
      try {
        verdict = path ? h.mayOpen(path, pid) : true;
      } catch (err) {
        log.warn("Open permission check failed; allowing", { path, error: (err as Error).message });
      }
      if (verdict instanceof Promise) {
        verdict.then((ok) => this.#respond(fd, ok), () => this.#respond(fd, true));
        return; // the descriptor is closed with the answer
      }
      this.#respond(fd, verdict);
      return;
    }
    libc().close(fd);
  }

  #read(fd: number, path: string, pid: number): ClosedFile {
    const st = Deno.statSync(`/proc/self/fd/${fd}`);
    const size = Number(fan().lseek(fd, 0n, SEEK_END));
    if (size > this.#maxRead) {
      return { path, pid, size, bytes: null, dev: st.dev, ino: st.ino ?? 0 };
    }
    const bytes = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const n = fan().pread(fd, bytes.subarray(off), BigInt(size - off), BigInt(off));
      if (n < 0) throw syscallError("pread", `read "${path}"`);
      if (n === 0) break;
      off += n;
    }
    return { path, pid, size: off, bytes: bytes.subarray(0, off), dev: st.dev, ino: st.ino ?? 0 };
  }

  #respond(fd: number, allow: boolean): void {
    if (this.#fd < 0) {
      libc().close(fd); // the group is closed: the kernel has allowed the open already
      return;
    }
    this.#respView.setInt32(0, fd, true);
    this.#respView.setUint32(4, allow ? FAN_ALLOW : FAN_DENY, true);
    if (libc().write(this.#fd, this.#resp, BigInt(RESPONSE_SIZE)) < 0) {
      log.warn("Cannot answer a fanotify permission event", { fd });
    }
    libc().close(fd);
  }

  /** Closes the group; the kernel allows every permission event still pending. */
  close(): void {
    if (this.#fd >= 0) libc().close(this.#fd);
    this.#fd = -1;
  }
}
