/**
 * A transport keypair: the two keyed AEAD contexts of one session, the send
 * counter, the receive replay window, and the indices that name it on the
 * wire. Freed (OpenSSL contexts released) when rotated out or zeroed.
 */
import { AeadContext } from "./aead.ts";
import { ReplayWindow } from "./replay.ts";
import type { SessionKeys } from "./noise.ts";

/** One session's keys and counters. */
export class Keypair {
  /** Encrypting context (our send key). */
  readonly send: AeadContext;
  /** Decrypting context (our receive key). */
  readonly receive: AeadContext;
  /** Replay filter for received counters. */
  readonly replay = new ReplayWindow();
  /** Next counter to send. */
  sendCounter = 0;

  constructor(
    keys: SessionKeys,
    /** True when we sent the initiation that made this keypair. */
    readonly isInitiator: boolean,
    /** Monotonic ms when the keypair was derived. */
    readonly createdAt: number,
    /** Our index: what the peer writes as receiver. */
    readonly localIndex: number,
    /** The peer's index: what we write as receiver. */
    readonly remoteIndex: number,
    /** Owner; typed loosely to keep this module free of the peer class. */
    readonly peer: unknown,
  ) {
    this.send = new AeadContext(keys.send, true);
    this.receive = new AeadContext(keys.receive, false);
    keys.send.fill(0);
    keys.receive.fill(0);
  }

  /** Releases both OpenSSL contexts; the keypair cannot be used afterwards. */
  free(): void {
    this.send.free();
    this.receive.free();
  }

  /** True when the keypair is too old or used too much to send or receive with. */
  expired(now: number, rejectAfterMs: number, maxCounter: number): boolean {
    return this.send.freed || now - this.createdAt >= rejectAfterMs ||
      this.sendCounter > maxCounter;
  }
}
