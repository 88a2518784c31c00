/**
 * Client-to-client: when the policy enables it, this device asks the edge for
 * the name `<first label of its hostname>.<c2c domain>`; the edge's DNS then
 * answers it for other devices. A refused name is told to the user.
 *
 * The registration follows the policy: turning client-to-client on, or a new
 * host-name pattern or domain, registers again at once (the edge judges the
 * name against the pattern, so a name refused under the old pattern may pass
 * under the new one and the device must not wait for its next reconnect).
 * The edge's answer is kept: it is what "Valid Hostname" shows in the
 * connector console, so the console never guesses validity itself.
 */
import type { Clock } from "../../clock.ts";
import { logger } from "../../log.ts";
import type { PolicyBundle } from "../../policy/types.ts";
import type { EdgeApi } from "../edge_api.ts";
import type { NotificationHub } from "../notifications.ts";

const log = logger("connector.engine");

/** The client-to-client name of this device, or null when the policy does not enable it. */
export function deviceFqdn(policy: PolicyBundle | null, hostname: string): string | null {
  const c2c = policy?.clientToClient;
  if (!c2c?.enabled) return null;
  const host = hostname.split(".")[0].toLowerCase();
  return `${host}.${c2c.domain}`;
}

/** What decides whether a registration is still current: the name and the pattern it is judged by. */
export function registrationKey(policy: PolicyBundle | null, hostname: string): string | null {
  const fqdn = deviceFqdn(policy, hostname);
  return fqdn === null ? null : `${fqdn}\n${policy!.clientToClient.hostnameRegex}`;
}

/** The edge's last word on this device's client-to-client name. */
export interface C2cStanding {
  fqdn: string;
  /** True when the edge accepted the name; null until it answered. */
  valid: boolean | null;
  /** The edge's reason for a refusal, or the last error reaching it. */
  reason: string | null;
  /** When the edge answered (ms since the epoch), or null. */
  checkedAt: number | null;
}

/** Registers `fqdn` with the edge; a refusal becomes a notification, a failure a log line. */
export async function registerC2c(
  client: EdgeApi | null,
  fqdn: string | null,
  hub: Pick<NotificationHub, "raise">,
): Promise<{ valid: boolean; reason: string | null } | null> {
  if (!fqdn || !client) return null;
  try {
    const r = await client.registerC2c(fqdn);
    if (!r.valid) {
      hub.raise("c2c_invalid", "warn", `Client-to-client name ${fqdn} refused: ${r.reason}`, {
        fqdn,
      });
    }
    return { valid: r.valid, reason: r.valid ? null : r.reason };
  } catch (err) {
    log.warn("Cannot register for client-to-client", { fqdn, error: (err as Error).message });
    return null;
  }
}

/**
 * Keeps the registration in step with the policy: `sync` registers when the
 * name or pattern differs from the last registration the edge answered (or
 * when forced, on reconnect), and remembers the answer.
 */
export class C2cRegistrar {
  #key: string | null = null;
  #standing: C2cStanding | null = null;
  #inFlight: string | null = null;
  /** The key of the latest policy seen: an answer for an older one is dropped. */
  #wanted: string | null = null;

  constructor(private o: { hub: Pick<NotificationHub, "raise">; clock: Pick<Clock, "now"> }) {}

  /** The edge's answer for the current name, or null when client-to-client is off. */
  standing(): C2cStanding | null {
    return this.#standing;
  }

  /** Registers when needed; returns true when it asked the edge. */
  async sync(
    client: EdgeApi | null,
    policy: PolicyBundle | null,
    hostname: string,
    force = false,
  ): Promise<boolean> {
    const key = registrationKey(policy, hostname);
    const fqdn = deviceFqdn(policy, hostname);
    this.#wanted = key;
    if (key === null || fqdn === null) {
      this.#key = null;
      this.#standing = null;
      return false;
    }
    if (this.#standing?.fqdn !== fqdn) {
      this.#standing = { fqdn, valid: null, reason: null, checkedAt: null };
    }
    if (!client || this.#inFlight === key || (!force && this.#key === key)) return false;
    this.#inFlight = key;
    try {
      const r = await registerC2c(client, fqdn, this.o.hub);
      // A newer policy may have changed the name or pattern while the edge answered.
      if (r && this.#wanted === key) {
        this.#key = key;
        this.#standing = { fqdn, ...r, checkedAt: this.o.clock.now() };
      }
      return true;
    } finally {
      this.#inFlight = null;
    }
  }
}
