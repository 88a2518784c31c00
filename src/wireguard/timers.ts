/**
 * Protocol constants from the whitepaper §6 (as wireguard-go names them) and
 * the jitter helper. The timer state machine itself lives in device.ts and
 * peer.ts, driven by tick() against the injected Clock.
 */

/** Start a new handshake once a keypair has sent this many messages. */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/** Never use a keypair past this many messages: 2^64 - 2^13 - 1 (kept as a bigint; above 2^53). */
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
/** Start a new handshake once our (initiator) keypair is this old. */
export const REKEY_AFTER_TIME_MS = 120_000;
/** Never use a keypair older than this. */
export const REJECT_AFTER_TIME_MS = 180_000;
/** Give up a handshake after retrying this long. */
export const REKEY_ATTEMPT_TIME_MS = 90_000;
/** Wait this long for a handshake response before retrying (plus jitter). */
export const REKEY_TIMEOUT_MS = 5_000;
/** Upper bound of the random jitter added to handshake retries. */
export const REKEY_TIMEOUT_JITTER_MAX_MS = 333;
/** Send a keepalive if we received data but sent nothing for this long. */
export const KEEPALIVE_TIMEOUT_MS = 10_000;
/** Retries before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT. */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME_MS / REKEY_TIMEOUT_MS;
/** Wipe all key material after this long without a new session. */
export const ZERO_KEYS_AFTER_MS = 3 * REJECT_AFTER_TIME_MS;
/** Accept at most one initiation per peer in this interval (flood guard, as wireguard-go). */
export const HANDSHAKE_INITIATION_RATE_MS = 20;
/** Staged packets kept per peer while waiting for a handshake. */
export const MAX_STAGED_PACKETS = 1024;

/** Random jitter in [0, 333] ms from a random byte pair. */
export function jitterMs(random: (n: number) => Uint8Array): number {
  const b = random(2);
  return ((b[0] << 8) | b[1]) % (REKEY_TIMEOUT_JITTER_MAX_MS + 1);
}
