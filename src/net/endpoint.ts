/**
 * Endpoints name where a peer was last heard from and where to answer it.
 *
 * The tunnel protocol is transport-agnostic: a datagram arrives from an
 * Endpoint and replies go to an Endpoint. `transport` tells the pump which
 * socket to use; WireGuard roaming means the protocol simply remembers the
 * last authenticated Endpoint of each peer.
 *
 * Endpoints are interned (one object per distinct address) so the hot path
 * compares them by identity and never allocates per packet.
 */

/** Which transport an endpoint is reached over. */
export type TransportKind = "udp" | "tls";

/**
 * One advertised way to reach the edge's tunnel, as the edge hands it out at
 * enrolment: a host (name or address), not yet resolved, and a port.
 */
export interface TunnelEndpoint {
  transport: TransportKind;
  host: string;
  port: number;
}

/** Where a peer is: transport, IP address (v4 dotted or v6 text) and port. */
export interface Endpoint {
  readonly transport: TransportKind;
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** "udp:192.0.2.1:443" or "tls:[2001:db8::1]:443" — unique per endpoint. */
  readonly key: string;
  /**
   * For TLS endpoints, the id of the accepted or dialled connection that
   * carries it; 0 for UDP.
   */
  readonly connId: number;
}

const interned = new Map<string, Endpoint>();

/** Formats address and port as "1.2.3.4:5" or "[::1]:5". */
export function formatHostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Returns the one Endpoint object for this transport, address and port. */
export function endpoint(
  transport: TransportKind,
  address: string,
  port: number,
  connId = 0,
): Endpoint {
  const key = `${transport}:${formatHostPort(address, port)}${connId ? `#${connId}` : ""}`;
  let ep = interned.get(key);
  if (!ep) {
    ep = Object.freeze(
      {
        transport,
        address,
        port,
        family: address.includes(":") ? 6 : 4,
        key,
        connId,
      } as const,
    );
    interned.set(key, ep);
    // Bound the table: endpoints of random garbage senders must not grow memory forever.
    if (interned.size > 65536) {
      const first = interned.keys().next().value;
      if (first !== undefined) interned.delete(first);
    }
  }
  return ep;
}

/**
 * Parses "host:port" / "[v6]:port" (host must be an IP literal) into a UDP
 * endpoint; throws a sentence naming the bad value.
 */
export function parseEndpoint(text: string, transport: TransportKind = "udp"): Endpoint {
  const m = text.match(/^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/) ?? text.match(/^([0-9.]+):(\d{1,5})$/);
  if (!m) throw new Error(`Cannot parse endpoint "${text}": expected IP:PORT or [IPv6]:PORT`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) {
    throw new Error(`Cannot parse endpoint "${text}": port ${port} is out of range 1-65535`);
  }
  return endpoint(transport, m[1].toLowerCase(), port);
}
