/**
 * What the edge DNS told each device: for every address it handed a device
 * in an answer for a name of an FQDN segment, that name, until the answer's
 * TTL runs out. A new flow from that device to that address is then matched
 * to the segment by name. Per device, because two devices asking the same
 * name through different views must not see each other's answers, and
 * because a device that never asked has no claim to a name.
 *
 * TTLs get a floor (a client may connect a little after a 0-second TTL, as
 * resolvers and browsers do) and a ceiling (an address is re-learnt at least
 * hourly); each device holds a bounded number of bindings, oldest dropped.
 */
import type { Clock } from "../../clock.ts";
import { normDomain } from "../../policy/access.ts";
import { formatIpBytes, parseIpText } from "../../packet/addr.ts";

/**
 * The pseudo-device of bindings the edge learnt by resolving segment names
 * itself: they hold for every device, so an address an FQDN segment lives
 * at is private even for a device that resolved it elsewhere.
 */
export const GLOBAL = "*";

/** Shortest and longest time a binding is kept (s). */
export const BINDING_TTL_FLOOR_S = 60;
/** Longest time a binding is kept (s). */
export const BINDING_TTL_CEILING_S = 3600;
/** Most bindings kept per device. */
export const BINDINGS_PER_DEVICE = 4096;

interface Binding {
  names: string[];
  expires: number;
}

/** Per-device address → names bindings learnt from edge DNS answers. */
export class DnsBindings {
  #byDevice = new Map<string, Map<string, Binding>>();

  constructor(private clock: Clock, private perDevice = BINDINGS_PER_DEVICE) {}

  /** Remembers that `device` (its tunnel address, or GLOBAL) was told `addresses` for `name`. */
  record(device: string, name: string, addresses: readonly string[], ttlSec: number): void {
    const dev = device === GLOBAL ? GLOBAL : canonical(device);
    if (!dev || addresses.length === 0) return;
    const n = normDomain(name);
    const ttl = Math.min(BINDING_TTL_CEILING_S, Math.max(BINDING_TTL_FLOOR_S, ttlSec));
    const expires = this.clock.monotonic() + ttl * 1000;
    let m = this.#byDevice.get(dev);
    if (!m) this.#byDevice.set(dev, m = new Map());
    for (const a of addresses) {
      const key = canonical(a);
      if (!key) continue;
      const b = m.get(key);
      if (b && b.expires > this.clock.monotonic()) {
        if (!b.names.includes(n)) b.names.push(n);
        b.expires = Math.max(b.expires, expires);
        m.delete(key); // keep Map order = recency, so the oldest go first
        m.set(key, b);
      } else {
        m.delete(key);
        m.set(key, { names: [n], expires });
      }
      while (m.size > this.perDevice) m.delete(m.keys().next().value!);
    }
  }

  /**
   * Names the device was given for address `ip` (bytes at `buf[off..]`),
   * else the names the edge itself resolved to it (GLOBAL), or null.
   */
  namesAt(device: string, buf: Uint8Array, off: number, len: 4 | 16): string[] | null {
    const key = formatIpBytes(buf, off, len);
    return this.#get(device, key) ?? (device === GLOBAL ? null : this.#get(GLOBAL, key));
  }

  #get(device: string, key: string): string[] | null {
    const m = this.#byDevice.get(device);
    const b = m?.get(key);
    if (!m || !b) return null;
    if (b.expires <= this.clock.monotonic()) {
      m.delete(key);
      return null;
    }
    return b.names;
  }

  /** Names the device was given for address text `ip`, or null. */
  names(device: string, ip: string): string[] | null {
    const b = parseIpText(ip);
    const dev = device === GLOBAL ? GLOBAL : canonical(device);
    if (!b || !dev) return null;
    return this.namesAt(dev, b, 0, b.length as 4 | 16);
  }

  /** Forgets a device's bindings (it was removed). */
  forget(device: string): void {
    const dev = canonical(device);
    if (dev) this.#byDevice.delete(dev);
  }

  /** Bindings held for a device (tests, diagnostics). */
  count(device: string): number {
    return this.#byDevice.get(canonical(device) ?? "")?.size ?? 0;
  }
}

function canonical(ip: string): string | null {
  const b = parseIpText(ip.replace(/^::ffff:(?=\d+\.)/, ""));
  return b ? formatIpBytes(b) : null;
}
