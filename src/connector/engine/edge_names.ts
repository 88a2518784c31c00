/**
 * The edge named by DNS. When an enrolment's tunnel endpoint is a host
 * name, the addresses it resolves to must stay outside the tunnel: routing
 * the tunnel's own packets into the tunnel would loop them and cut the
 * device off (DESIGN.md §4, src/policy/routes.ts). The name is resolved
 * before every bring-up, again on every network change (another network,
 * another resolver, maybe another answer) and periodically, and the engine
 * reconfigures the routes when the answer changes.
 *
 * A failed lookup keeps the last answer: a resolver that is briefly away
 * must not put the edge's address back into the tunnel.
 */
import { logger } from "../../log.ts";
import { canonicalIp } from "../../policy/cidr.ts";
import type { TunnelEndpoint } from "../../net/endpoint.ts";
import type { ResolveHost } from "./strict_allow.ts";

const log = logger("connector.engine");

/** The resolved addresses of the edge's named endpoints. */
export class EdgeNames {
  readonly #resolve: ResolveHost;
  #addresses: string[] = [];
  #names: string[] = [];

  constructor(resolve: ResolveHost) {
    this.#resolve = resolve;
  }

  /** Canonical addresses, sorted (empty when every endpoint is an address). */
  get addresses(): readonly string[] {
    return this.#addresses;
  }

  /**
   * Resolves the named endpoints; returns true when the set of addresses
   * changed. Names that do not resolve keep their previous addresses.
   */
  async refresh(endpoints: readonly TunnelEndpoint[]): Promise<boolean> {
    const names = [...new Set(endpoints.map((e) => e.host.replace(/^\[|\]$/g, "")))]
      .filter((h) => h && !canonicalIp(h)).sort();
    const before = this.#addresses;
    // Other names: the old answers say nothing about the new ones.
    if (names.join() !== this.#names.join()) this.#addresses = [];
    this.#names = names;
    if (!names.length) {
      this.#addresses = [];
      return before.length > 0;
    }
    const out = new Set<string>();
    let failed = false;
    for (const name of names) {
      let got: string[] = [];
      try {
        got = (await this.#resolve(name)).map((a) => canonicalIp(a)).filter((a): a is string =>
          a !== null
        );
      } catch (e) {
        log.warn(`Cannot resolve edge host "${name}"`, { error: (e as Error).message });
      }
      if (!got.length) failed = true;
      for (const a of got) out.add(a);
    }
    // Nothing (or not everything) answered: keep what we had on top.
    if (failed) { for (const a of this.#addresses) out.add(a); }
    const next = [...out].sort();
    if (next.join() === before.join()) {
      this.#addresses = next;
      return false;
    }
    log.info("Edge host resolved; its addresses stay outside the tunnel", {
      hosts: names,
      addresses: next,
      previous: before,
    });
    this.#addresses = next;
    return true;
  }
}
