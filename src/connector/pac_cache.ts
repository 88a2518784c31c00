/**
 * The device's PAC file, fetched from the edge (GET /api/v1/pac) when the
 * policy bundle names a PAC whose hash differs from the copy held, and kept
 * in the data directory, so the local listener still serves it when the
 * edge cannot be reached (a restart included). A failed fetch keeps the old
 * copy; the next policy or state change (or the next request for the file)
 * tries again.
 */
import { logger } from "../log.ts";
import { sha256Hex } from "../identity/secrets.ts";
import type { EdgeApi } from "./edge_api.ts";

const log = logger("connector.pac");

/** The PAC file of this device: cached on disk, refreshed from the edge. */
export class PacCache {
  readonly #file: string;
  readonly #client: () => EdgeApi | null;
  #text: string | null = null;
  #sha: string | null = null;
  #wanted: string | null = null;
  #inflight: Promise<void> | null = null;
  #lastTry = 0;

  constructor(o: { dataDir: string; client: () => EdgeApi | null }) {
    this.#file = `${o.dataDir}/proxy.pac`;
    this.#client = o.client;
    try {
      this.#set(Deno.readTextFileSync(this.#file));
    } catch { /* none cached yet */ }
  }

  /** The PAC text held (the cached copy until the edge sent a newer one), or null. */
  text(): string | null {
    // Asked for while behind the bundle (a fetch failed): try again, in the background.
    if (this.#wanted !== null && this.#wanted !== this.#sha) {
      void this.sync({ sha256: this.#wanted });
    }
    return this.#text;
  }

  /** Where the copy is kept. */
  get file(): string {
    return this.#file;
  }

  /** Fetches the PAC the bundle names unless it is the one held; resolves when done (never throws). */
  sync(ref: { sha256: string } | null): Promise<void> {
    if (!ref) return Promise.resolve();
    // The same wanted file again soon after a failed try: wait (states change
    // often while the edge is down, and browsers ask for the file often).
    const again = ref.sha256 === this.#wanted && Date.now() - this.#lastTry < 30_000;
    this.#wanted = ref.sha256;
    if (ref.sha256 === this.#sha || (again && !this.#inflight)) return Promise.resolve();
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #fetch(): Promise<void> {
    this.#lastTry = Date.now();
    const api = this.#client();
    if (!api?.fetchPac) return;
    try {
      const r = await api.fetchPac(this.#sha);
      if (r.status === "unchanged") return;
      const tmp = `${this.#file}.tmp`;
      await Deno.writeTextFile(tmp, r.text, { mode: 0o644 });
      await Deno.rename(tmp, this.#file);
      this.#set(r.text);
      log.info("PAC file updated", { sha256: this.#sha, bytes: r.text.length });
    } catch (e) {
      log.warn("Cannot fetch the PAC file; serving the cached copy", {
        error: (e as Error).message,
        cached: this.#text !== null,
      });
    }
  }

  #set(text: string): void {
    this.#text = text;
    this.#sha = sha256Hex(text);
  }
}
