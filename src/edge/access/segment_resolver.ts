/**
 * The edge resolves the exact names of FQDN segments itself, from its own
 * resolver, and keeps the addresses as bindings for every device (GLOBAL in
 * dns_bindings.ts). Without it an FQDN segment's server would be "internet"
 * for a device that looked the name up elsewhere, or typed the address:
 * denied by name but reachable by address. Wildcard domains cannot be
 * enumerated; they are matched through the answers the edge DNS gives.
 *
 * Names are refreshed every `intervalMs` with a few lookups at a time; a
 * binding lasts two intervals, so a slow refresh never leaves a gap.
 */
import { logger } from "../../log.ts";
import { type DnsBindings, GLOBAL } from "./dns_bindings.ts";

const log = logger("edge.segments");

/** Resolves a name to addresses (A and AAAA). */
export type Resolve = (name: string) => Promise<string[]>;

/** Options of a SegmentResolver. */
export interface SegmentResolverOptions {
  /** Refresh period (default 60 s). */
  intervalMs?: number;
  /** Most names resolved (default 2,000; the rest are matched by edge DNS answers only). */
  maxNames?: number;
  /** Lookups in flight at once (default 8). */
  concurrency?: number;
}

/** The system resolver (the edge host's /etc/resolv.conf), A and AAAA. */
export const systemResolve: Resolve = async (name) => {
  const out: string[] = [];
  for (const type of ["A", "AAAA"] as const) {
    try {
      out.push(...await Deno.resolveDns(name, type));
    } catch { /* no such record */ }
  }
  return out;
};

/** Keeps GLOBAL bindings for the exact names of FQDN segments. */
export class SegmentResolver {
  #names: string[] = [];
  #timer: ReturnType<typeof setInterval> | null = null;
  #running: Promise<void> | null = null;
  readonly #interval: number;
  readonly #max: number;
  readonly #concurrency: number;

  constructor(
    private bindings: DnsBindings,
    private resolve: Resolve = systemResolve,
    opts: SegmentResolverOptions = {},
  ) {
    this.#interval = opts.intervalMs ?? 60_000;
    this.#max = opts.maxNames ?? 2000;
    this.#concurrency = opts.concurrency ?? 8;
  }

  /** Sets the names to keep resolved and resolves them now. */
  setNames(names: readonly string[]): Promise<void> {
    if (names.length > this.#max) {
      log.warn("Too many FQDN segment names to resolve; the rest match by DNS answers only", {
        names: names.length,
        resolved: this.#max,
      });
    }
    this.#names = names.slice(0, this.#max);
    return this.refresh();
  }

  /** Resolves every name once (a refresh already running is awaited instead). */
  refresh(): Promise<void> {
    this.#running ??= this.#refresh().finally(() => (this.#running = null));
    return this.#running;
  }

  async #refresh(): Promise<void> {
    const queue = [...this.#names];
    const ttl = (2 * this.#interval) / 1000;
    const worker = async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        try {
          const addrs = await this.resolve(name);
          if (addrs.length) this.bindings.record(GLOBAL, name, addrs, ttl);
        } catch (e) {
          log.debug("Cannot resolve segment name", { name, error: String(e) });
        }
      }
    };
    await Promise.all(Array.from({ length: this.#concurrency }, worker));
  }

  /** Starts the periodic refresh. */
  start(): void {
    this.#timer ??= setInterval(() => this.refresh(), this.#interval);
  }

  /** Stops refreshing; resolves once a refresh in flight is done. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
