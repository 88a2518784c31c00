/**
 * Readiness of several file descriptors with one wait.
 *
 * Why this shape: a synchronous FFI call costs nanoseconds but blocks the JS
 * thread; a `nonblocking: true` call runs on a worker thread and costs 5–10 µs.
 * So `wait()` first asks poll(2) with timeout 0 synchronously — when the data
 * plane is busy something is already ready and the wait is free — and only
 * then parks one nonblocking poll covering every registered fd.
 *
 * An eventfd is always in the set so code whose input arrives through Deno
 * promises (timers, the TLS transport, shutdown) can interrupt a pending wait
 * with `wake()`. `close()` wakes and ends any pending wait; a pending wait
 * keeps the event loop alive, so owners must close the poller on shutdown.
 *
 * `waitBriefly()` is the third way: a synchronous ppoll of a few hundred
 * microseconds on the JS thread. Waking from the parked poll goes worker
 * thread → event loop → JS, which costs 100–200 µs on a quiet machine; the
 * kernel wakes a thread blocked in ppoll directly in about 30 µs. Right after
 * traffic, when an answer is likely within a millisecond, the pump waits
 * briefly a few times before it parks (see pump.ts), holding the event loop
 * for at most one slice at a time.
 */
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  POLLERR,
  POLLFD_SIZE,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  TIMESPEC_SIZE,
} from "../../ffi/libc.ts";
import { libc, syscallError } from "./errno.ts";

export { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT } from "../../ffi/libc.ts";

/** Waits for readiness of registered fds, interruptible through an eventfd. */
export class Poller {
  #fds: number[] = [];
  #events: number[] = [];
  // pollfd array handed to poll(2); slot 0 is the wake-up eventfd.
  #buf: Uint8Array;
  #i32: Int32Array;
  #i16: Int16Array;
  #n = 0;
  #nBig = 0n; // #n as the bigint FFI wants for nfds_t, made only when #n changes
  #wakeFd: number;
  #wakeBuf = new Uint8Array(new BigUint64Array([1n]).buffer);
  #drainBuf = new Uint8Array(8);
  #pending: Promise<number> | null = null;
  #closed = false;
  #wakeups = 0;
  readonly #tsBytes = new Uint8Array(TIMESPEC_SIZE);
  readonly #ts = new Int32Array(this.#tsBytes.buffer); // tv_sec, tv_nsec as (lo, hi) pairs

  /** Creates the wake-up eventfd; throws a SyscallError when that fails. */
  constructor() {
    const fd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw syscallError("eventfd", "create poller wake-up eventfd");
    this.#wakeFd = fd;
    this.#buf = new Uint8Array(POLLFD_SIZE * 8);
    this.#i32 = new Int32Array(this.#buf.buffer);
    this.#i16 = new Int16Array(this.#buf.buffer);
  }

  /** The eventfd that `wake()` signals; -1 once closed. */
  get wakeFd(): number {
    return this.#closed ? -1 : this.#wakeFd;
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while a nonblocking poll is parked on a worker thread. */
  get waiting(): boolean {
    return this.#pending !== null;
  }

  /** How many times a wait ended because of wake() (for tests and stats). */
  get wakeups(): number {
    return this.#wakeups;
  }

  /** Watches `fd` for `events` (POLLIN, POLLOUT); replaces the events if already watched. */
  add(fd: number, events: number): void {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`Cannot poll fd ${fd}: not an fd`);
    const i = this.#fds.indexOf(fd);
    if (i >= 0) this.#events[i] = events;
    else {
      this.#fds.push(fd);
      this.#events.push(events);
    }
    // A parked poll uses the old set; wake it so the change counts now.
    if (this.#pending) this.wake();
  }

  /** Stops watching `fd`. */
  remove(fd: number): void {
    const i = this.#fds.indexOf(fd);
    if (i < 0) return;
    this.#fds.splice(i, 1);
    this.#events.splice(i, 1);
    if (this.#pending) this.wake();
  }

  /** The events poll reported for `fd` after the last wait (0 when none or not watched). */
  revents(fd: number): number {
    if (this.#pending) return 0;
    for (let i = 1; i < this.#n; i++) {
      if (this.#i32[i * 2] === fd) return this.#i16[i * 4 + 3] & 0xffff;
    }
    return 0;
  }

  /** Interrupts a pending (or the next) wait; safe to call from anywhere, any time. */
  wake(): void {
    if (this.#closed && !this.#pending) return;
    libc().write(this.#wakeFd, this.#wakeBuf, 8n); // EAGAIN only when already signalled.
  }

  /**
   * Checks readiness without blocking; returns how many watched fds have
   * events (see revents). A pending wake-up is consumed. 0 while a wait is parked.
   */
  pollNow(): number {
    if (this.#closed || this.#pending) return 0;
    this.#fill();
    const r = libc().poll(this.#buf, BigInt(this.#n), 0);
    if (r <= 0) return 0;
    return this.#collect();
  }

  /**
   * Blocks the calling thread for up to `micros` µs (synchronous ppoll) until
   * a watched fd or the wake-up eventfd is ready; returns the number of ready
   * watched fds. 0 while a parked wait is pending (the fds are its).
   */
  waitBriefly(micros: number): number {
    if (this.#closed || this.#pending) return 0;
    this.#fill();
    const us = Math.max(0, Math.floor(micros));
    this.#ts[0] = Math.floor(us / 1_000_000);
    this.#ts[2] = (us % 1_000_000) * 1000;
    const r = libc().ppoll(this.#buf, this.#nBig, this.#tsBytes, null);
    if (r <= 0) return 0;
    return this.#collect();
  }

  /**
   * Resolves with the number of ready watched fds, or 0 after `timeoutMs`
   * (negative waits forever), a wake(), or close(). Concurrent callers share
   * one parked poll.
   */
  wait(timeoutMs: number): Promise<number> {
    if (this.#pending) return this.#pending;
    if (this.#closed) return Promise.resolve(0);
    this.#fill();
    const r = libc().poll(this.#buf, BigInt(this.#n), 0);
    if (r > 0) {
      const woke = (this.#i16[3] & POLLIN) !== 0;
      const ready = this.#collect();
      if (ready > 0 || woke || timeoutMs === 0) return Promise.resolve(ready);
    } else if (timeoutMs === 0) {
      return Promise.resolve(0);
    }
    const t = timeoutMs < 0 ? -1 : Math.min(Math.ceil(timeoutMs), 0x7fffffff);
    this.#pending = libc().poll_nb(this.#buf, BigInt(this.#n), t).then((res) => {
      this.#pending = null;
      if (this.#closed) {
        this.#release();
        return 0;
      }
      // -1 here is EINTR in practice; errno lives on the worker thread, so treat it as a timeout.
      return res > 0 ? this.#collect() : 0;
    });
    return this.#pending;
  }

  /** Closes the poller; a pending wait resolves with 0. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pending) this.wake(); // the parked poll's continuation releases the fd
    else this.#release();
  }

  #release(): void {
    if (this.#wakeFd >= 0) libc().close(this.#wakeFd);
    this.#wakeFd = -1;
  }

  #fill(): void {
    const n = this.#fds.length + 1;
    if (n * POLLFD_SIZE > this.#buf.length) {
      this.#buf = new Uint8Array(n * 2 * POLLFD_SIZE);
      this.#i32 = new Int32Array(this.#buf.buffer);
      this.#i16 = new Int16Array(this.#buf.buffer);
    }
    this.#i32[0] = this.#wakeFd;
    this.#i16[2] = POLLIN;
    this.#i16[3] = 0;
    for (let i = 1; i < n; i++) {
      this.#i32[i * 2] = this.#fds[i - 1];
      this.#i16[i * 4 + 2] = this.#events[i - 1];
      this.#i16[i * 4 + 3] = 0;
    }
    if (n !== this.#n) this.#nBig = BigInt(n);
    this.#n = n;
  }

  // Drains the eventfd if it fired and counts watched fds with events.
  #collect(): number {
    if (this.#i16[3] & POLLIN) {
      libc().read(this.#wakeFd, this.#drainBuf, 8n);
      this.#wakeups++;
    }
    let ready = 0;
    for (let i = 1; i < this.#n; i++) {
      if (this.#i16[i * 4 + 3] & (POLLIN | POLLOUT | POLLERR | POLLHUP | POLLNVAL)) ready++;
    }
    return ready;
  }
}
