/**
 * The identity provider hop: can this device reach the IdP its user signs
 * in at, and is the IdP's certificate in date? An https URL gets a TCP
 * connect and a TLS handshake (tls_probe.ts, which reads the leaf whatever
 * its chain, so an expired certificate is named rather than showing up as a
 * bare handshake failure); an http URL (an IdP on loopback, allowed for
 * tests and same-box IdPs) gets a TCP connect only, with no certificate to
 * judge. Never throws.
 */
import net from "node:net";
import { probeTls } from "./tls_probe.ts";
import type { DoctorFacts, TlsFacts } from "./types.ts";

/** The provider as the policy bundle names it. */
export interface IdpTarget {
  name: string;
  url: string;
}

function hostPort(u: URL): { host: string; port: number } {
  return {
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: Number(u.port || (u.protocol === "https:" ? 443 : 80)),
  };
}

/** TCP connect only (for an http IdP). */
function probeTcp(host: string, port: number, timeoutMs: number): Promise<TlsFacts> {
  const target = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const started = performance.now();
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const finish = (f: TlsFacts) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(f);
    };
    const timer = setTimeout(
      () => finish({ target, connected: false, error: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    sock.once("error", (e: Error) => finish({ target, connected: false, error: e.message }));
    sock.once("connect", () =>
      finish({
        target,
        connected: true,
        connectMs: Math.round((performance.now() - started) * 10) / 10,
      }));
  });
}

/** Probes the device's IdP; `null` target: none applies to this device. */
export async function probeIdp(
  idp: IdpTarget | null,
  timeoutMs = 3000,
): Promise<NonNullable<DoctorFacts["idp"]>> {
  if (!idp) return { url: null };
  let u: URL;
  try {
    u = new URL(idp.url);
  } catch {
    return {
      url: idp.url,
      name: idp.name,
      tls: { target: idp.url, connected: false, error: "not a URL" },
    };
  }
  const { host, port } = hostPort(u);
  if (u.protocol !== "https:") {
    return {
      url: idp.url,
      name: idp.name,
      tls: await probeTcp(host, port, timeoutMs),
      certExpiresAt: null,
    };
  }
  const { notAfter, ...tls } = await probeTls({ host, port, timeoutMs });
  return { url: idp.url, name: idp.name, tls, certExpiresAt: notAfter ?? null };
}
