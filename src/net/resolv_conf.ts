/**
 * resolv.conf, parsed. One parser for every reader: the connector's split
 * DNS (which must keep options and search domains when it rewrites the
 * file), its network-fact collector and the edge's DNS forwarder.
 */

/** The parts of resolv.conf that matter to us. */
export interface ResolvConf {
  nameservers: string[];
  search: string[];
  /** "options" tokens, e.g. ["ndots:2", "timeout:1"]. */
  options: string[];
}

/** Parses resolv.conf text (comments with # or ;, last search/domain line wins as in glibc). */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (!line) continue;
    const [key, ...rest] = line.split(/\s+/);
    if (key === "nameserver" && rest[0]) out.nameservers.push(rest[0]);
    else if (key === "search" || key === "domain") out.search = rest.slice();
    else if (key === "options") out.options.push(...rest);
  }
  return out;
}
