/**
 * TLS probe: connects to host:port, completes a TLS handshake whatever the
 * certificate, and then says whether the presented leaf chains to the pinned
 * CA. Accepting any certificate for the look is deliberate and safe: no byte
 * of ours is sent over this connection, and it is how a re-signing middlebox
 * gets named (its issuer) instead of showing up as a bare "unknown issuer".
 * Chain checks use node:crypto's X509Certificate (checkIssued + verify).
 */
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { TlsFacts } from "./types.ts";

/** Options of a TLS probe. */
export interface TlsProbeOptions {
  host: string;
  port: number;
  /** The pinned CA (PEM); absent: the chain is not judged. */
  caPem?: string;
  /** SNI to send (default: host when it is a name). */
  servername?: string;
  timeoutMs?: number;
}

function dn(x: string | undefined): string | undefined {
  return x?.split("\n").filter(Boolean).join(", ");
}

/** Probes one TLS endpoint; never throws. */
export function probeTls(o: TlsProbeOptions): Promise<TlsFacts & { notAfter?: number }> {
  const target = `${o.host.includes(":") ? `[${o.host}]` : o.host}:${o.port}`;
  const started = performance.now();
  return new Promise((resolve) => {
    let connectMs: number | undefined;
    let settled = false;
    const finish = (f: TlsFacts & { notAfter?: number }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(f);
    };
    const isName = !/^[0-9.]+$/.test(o.host) && !o.host.includes(":");
    const sock = tls.connect({
      host: o.host,
      port: o.port,
      servername: o.servername ?? (isName ? o.host : undefined),
      rejectUnauthorized: false,
    });
    const timer = setTimeout(
      () =>
        finish({ target, connected: false, error: `no answer within ${o.timeoutMs ?? 3000} ms` }),
      o.timeoutMs ?? 3000,
    );
    sock.once("connect", () => (connectMs = Math.round((performance.now() - started) * 10) / 10));
    sock.once("error", (e: Error) => finish({ target, connected: false, error: e.message }));
    sock.once("secureConnect", () => {
      const peer = sock.getPeerCertificate(false);
      if (!peer?.raw) {
        finish({ target, connected: false, error: "no certificate presented", connectMs });
        return;
      }
      const leaf = new X509Certificate(peer.raw);
      let pinned: boolean | undefined;
      if (o.caPem) {
        try {
          const ca = new X509Certificate(o.caPem);
          pinned = leaf.fingerprint256 === ca.fingerprint256 ||
            (leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
        } catch {
          pinned = false;
        }
      }
      finish({
        target,
        connected: true,
        pinned,
        issuer: dn(leaf.issuer),
        subject: dn(leaf.subject),
        connectMs: connectMs ?? Math.round(performance.now() - started),
        notAfter: Date.parse(leaf.validTo),
      });
    });
  });
}
