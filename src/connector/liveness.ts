/**
 * Tunnel liveness: proves, every couple of seconds, that the edge answers
 * through the tunnel, and forces a fresh handshake when it stops.
 *
 * Why: WireGuard only notices a dead session after 15 s of unanswered data
 * (KEEPALIVE + REKEY_TIMEOUT), and never when there is no data — so after an
 * edge restart (its session keys gone) a connector would sit on a useless
 * session. A small DNS query to the edge's tunnel address is request/response
 * traffic the edge always answers; two misses in a row mean the session is
 * gone, and a new handshake brings the tunnel back in milliseconds once the
 * edge is up. The round-trip times double as a tunnel health figure.
 */
import dgram from "node:dgram";
import { systemTimers, type TimerId, type Timers } from "../clock.ts";
import { type Defaulted, withDefaults } from "../defaults.ts";
import { InputError } from "../errors.ts";
import { buildDnsQuery, DNS_TYPE, parseDnsHeader } from "../packet/dns.ts";
import { logger } from "../log.ts";

const log = logger("connector.liveness");

/** One probe: resolves with the RTT in ms, or null when unanswered in time. */
export type ProbeFn = () => Promise<number | null>;

/** Makes a probe that asks the edge DNS at `address` for the well-known name. */
export function dnsProbe(address: string, timeoutMs = 1000, port = 53): ProbeFn {
  return () =>
    new Promise((resolve) => {
      const sock = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
      const id = crypto.getRandomValues(new Uint16Array(1))[0];
      const started = performance.now();
      let done = false;
      const finish = (v: number | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        try {
          sock.close();
        } catch { /* closed */ }
        resolve(v);
      };
      const timer = setTimeout(() => finish(null), timeoutMs);
      sock.on("error", () => finish(null));
      sock.on("message", (msg: Uint8Array) => {
        const h = parseDnsHeader(msg);
        if (h && h.id === id && h.qr) finish(performance.now() - started);
      });
      const q = buildDnsQuery("protected.portcullis.internal", DNS_TYPE.A, id);
      sock.send(q, port, address, (err) => err && finish(null));
    });
}

/** Options of the liveness monitor. */
export interface LivenessOptions {
  probe: ProbeFn;
  /** Called after `misses` unanswered probes in a row (force a handshake). */
  onDead: () => void;
  /** Called on the first answer after being dead. */
  onAlive?: (rttMs: number) => void;
  /** Called on every unanswered probe with the count in a row (before onDead). */
  onMiss?: (missed: number) => void;
  /** Time between probes (default 2000 ms, at least 100 ms). */
  intervalMs?: number;
  /** Unanswered probes in a row that mean dead (default 2). */
  misses?: number;
  /** Timers between probes (default the real ones; tests move a manual clock). */
  timers?: Timers;
}

/** Shortest probe interval accepted: anything faster floods the edge. */
export const MIN_LIVENESS_INTERVAL_MS = 100;

/** Probes periodically; start() after the tunnel is configured, stop() before teardown. */
export class LivenessMonitor {
  readonly #o: Defaulted<LivenessOptions, "intervalMs" | "misses" | "timers">;
  #timer: TimerId | null = null;
  #missed = 0;
  #dead = false;
  #rtts: number[] = [];

  /** Builds a stopped monitor. */
  constructor(o: LivenessOptions) {
    this.#o = withDefaults(o, { intervalMs: 2000, misses: 2, timers: systemTimers });
    const ms = this.#o.intervalMs;
    if (!Number.isFinite(ms) || ms < MIN_LIVENESS_INTERVAL_MS) {
      throw new InputError(
        "invalid_liveness_interval",
        `Cannot probe the tunnel every ${ms} ms: the interval must be at least ${MIN_LIVENESS_INTERVAL_MS} ms`,
      );
    }
  }

  /** Last round-trip times (ms), newest last, at most 30. */
  get rtts(): number[] {
    return this.#rtts.slice();
  }

  /** True after `misses` unanswered probes, until one is answered. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Begins probing. */
  start(): void {
    if (this.#timer !== null) return;
    const timers = this.#o.timers;
    const tick = async () => {
      const rtt = await this.#o.probe().catch(() => null);
      if (this.#timer === null) return;
      this.record(rtt);
      this.#timer = timers.setTimeout(tick, this.#o.intervalMs);
    };
    this.#timer = timers.setTimeout(tick, this.#o.intervalMs);
  }

  /** Applies one probe result (exposed for tests). */
  record(rtt: number | null): void {
    if (rtt === null) {
      this.#missed++;
      this.#o.onMiss?.(this.#missed);
      if (this.#missed >= this.#o.misses) {
        if (!this.#dead) log.warn("The edge stopped answering through the tunnel");
        this.#dead = true;
        // Keep nudging while dead: the handshake itself is rate-limited.
        this.#o.onDead();
      }
      return;
    }
    this.#rtts.push(rtt);
    if (this.#rtts.length > 30) this.#rtts.shift();
    this.#missed = 0;
    if (this.#dead) {
      this.#dead = false;
      log.info("The edge answers through the tunnel again", { rttMs: Math.round(rtt) });
      this.#o.onAlive?.(rtt);
    }
  }

  /** Stops probing. */
  stop(): void {
    if (this.#timer !== null) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = null;
  }
}
