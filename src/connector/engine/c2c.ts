/**
 * Client-to-client: when the policy enables it, this device asks the edge for
 * the name `<first label of its hostname>.<c2c domain>`; the edge's DNS then
 * answers it for other devices. A refused name is told to the user.
 */
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

/** Registers `fqdn` with the edge; a refusal becomes a notification, a failure a log line. */
export async function registerC2c(
  client: EdgeApi | null,
  fqdn: string | null,
  hub: Pick<NotificationHub, "raise">,
): Promise<void> {
  if (!fqdn || !client) return;
  try {
    const r = await client.registerC2c(fqdn);
    if (!r.valid) {
      hub.raise("c2c_invalid", "warn", `Client-to-client name ${fqdn} refused: ${r.reason}`, {
        fqdn,
      });
    }
  } catch (err) {
    log.warn("Cannot register for client-to-client", { fqdn, error: (err as Error).message });
  }
}
