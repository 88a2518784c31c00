/**
 * Reads the server name (SNI) and ALPN list from a TLS ClientHello, so the
 * proxy can decide a TLS connection by host before any certificate is shown:
 * on a transparent 443 flow the SNI is the only name there is. Pure; bounds
 * are checked at every step and garbage gives null, never an exception.
 */

/** What the ClientHello names. */
export interface ClientHelloInfo {
  serverName: string | null;
  alpn: string[];
}

/** Bytes needed for the first TLS record (header + length), or null when `b` is not TLS. */
export function tlsRecordLength(b: Uint8Array): number | null {
  if (b.length < 5) return b.length && b[0] !== 0x16 ? null : 5;
  if (b[0] !== 0x16 || b[1] !== 0x03) return null;
  return 5 + ((b[3] << 8) | b[4]);
}

/** Parses the ClientHello in the first record of `b`; null when it is not one. */
export function parseClientHello(b: Uint8Array): ClientHelloInfo | null {
  const total = tlsRecordLength(b);
  if (total === null || b.length < total || total < 9) return null;
  const end = total;
  let p = 5;
  if (b[p] !== 0x01) return null; // handshake type ClientHello
  const hsLen = (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
  p += 4;
  const hsEnd = Math.min(end, p + hsLen);
  p += 2 + 32; // version, random
  if (p >= hsEnd) return null;
  p += 1 + b[p]; // session id
  if (p + 2 > hsEnd) return null;
  p += 2 + ((b[p] << 8) | b[p + 1]); // cipher suites
  if (p + 1 > hsEnd) return null;
  p += 1 + b[p]; // compression methods
  const info: ClientHelloInfo = { serverName: null, alpn: [] };
  if (p + 2 > hsEnd) return info;
  const extEnd = Math.min(hsEnd, p + 2 + ((b[p] << 8) | b[p + 1]));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = (b[p] << 8) | b[p + 1];
    const len = (b[p + 2] << 8) | b[p + 3];
    const body = p + 4;
    if (body + len > extEnd) return null;
    if (type === 0 && len >= 5) {
      // server_name_list: u16 length, then entries of (type u8, u16 len, name)
      let q = body + 2;
      const listEnd = body + len;
      while (q + 3 <= listEnd) {
        const nt = b[q], nl = (b[q + 1] << 8) | b[q + 2];
        if (q + 3 + nl > listEnd) return null;
        if (nt === 0) {
          const name = new TextDecoder().decode(b.subarray(q + 3, q + 3 + nl));
          if (/^[A-Za-z0-9._-]{1,253}$/.test(name)) info.serverName = name.toLowerCase();
          break;
        }
        q += 3 + nl;
      }
    } else if (type === 16 && len >= 2) {
      let q = body + 2;
      const listEnd = body + len;
      while (q + 1 <= listEnd) {
        const l = b[q];
        if (q + 1 + l > listEnd) break;
        info.alpn.push(new TextDecoder().decode(b.subarray(q + 1, q + 1 + l)));
        q += 1 + l;
      }
    }
    p = body + len;
  }
  return info;
}
