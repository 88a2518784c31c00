/**
 * A synchronous per-device change signal inside the edge process: the
 * control plane says "something about device X changed" (its
 * client-to-client registration, its posture) and the data plane's
 * enforcement re-decides that device's flows. Listeners must not throw;
 * one that does is logged and the others still run.
 */
import { logger } from "../log.ts";

const log = logger("edge.signal");

/** Fans a device id out to listeners. */
export class DeviceSignal {
  #subs = new Set<(deviceId: string) => void>();

  /** Tells every listener that `deviceId` changed. */
  emit(deviceId: string): void {
    for (const cb of this.#subs) {
      try {
        cb(deviceId);
      } catch (e) {
        log.error("Device change listener failed", { deviceId, error: String(e) });
      }
    }
  }

  /** Adds a listener; returns its removal. */
  on(cb: (deviceId: string) => void): () => void {
    this.#subs.add(cb);
    return () => this.#subs.delete(cb);
  }
}
