/**
 * The tunnel's hops: the edge over UDP and over TLS, the edge's certificate,
 * our tunnel interface, handshakes, the path MTU and DNS through the tunnel.
 * Pure functions over the gathered facts, like the rest (verdicts.ts).
 *
 * A handshake older than 180 s is stale: WireGuard rekeys every 120 s while
 * traffic flows and gives up a session after 180 s (REJECT_AFTER_TIME).
 */
import type { DoctorFacts, TlsFacts, Verdict } from "./types.ts";
import { unknown, v } from "./verdict.ts";

/** Handshake age (ms) after which the session is stale. */
export const HANDSHAKE_STALE_MS = 180_000;

/** Neither the DNS query nor any don't-fragment ping got an answer through the tunnel. */
function tunnelSilent(f: DoctorFacts): boolean {
  return f.dns?.answered === false && (!f.mtu || f.mtu.largestOk === null);
}

function tunnelWanted(f: DoctorFacts): boolean {
  return f.tunnel?.wanted ?? false;
}

/** The edge over UDP (the primary transport). */
export function edgeUdpVerdict(f: DoctorFacts): Verdict {
  const t = f.tunnel;
  if (!t) return unknown("edge_udp", "the tunnel's state");
  if (!t.wanted) {
    return v("edge_udp", "skipped", "no_tunnel", "No tunnel is wanted on this network.");
  }
  // Fresh: a recent handshake, and the edge still answers through the tunnel.
  const fresh = t.handshakeAgeMs !== null && t.handshakeAgeMs < HANDSHAKE_STALE_MS &&
    !tunnelSilent(f);
  if (t.transport === "udp" && fresh) {
    return v("edge_udp", "ok", "ok", `The tunnel runs over UDP to ${t.udpEndpoint}.`);
  }
  const edgeAlive = f.edgeTls?.connected || f.edgeApi?.connected;
  if (t.transport === "tls" && fresh) {
    return v(
      "edge_udp",
      "warn",
      "udp_blocked",
      `UDP to ${
        t.udpEndpoint ?? "the edge"
      } goes unanswered; the tunnel fell back to TLS on ${t.tlsEndpoint}` +
        `${t.stateReason ? ` (${t.stateReason})` : ""}.`,
      `Allow UDP to ${t.udpEndpoint ?? "the edge"} on the firewall: TLS works but is slower.`,
    );
  }
  if (edgeAlive) {
    return v(
      "edge_udp",
      "fault",
      "udp_blocked",
      `UDP to ${t.udpEndpoint ?? "the edge"} goes unanswered while the edge answers over TCP` +
        `${t.tlsFallback ? "" : ", and TLS fallback is off in the forwarding profile"}.`,
      t.tlsFallback
        ? `Allow UDP to ${t.udpEndpoint ?? "the edge"} on the firewall.`
        : `Allow UDP to ${
          t.udpEndpoint ?? "the edge"
        } on the firewall, or turn TLS fallback on in the forwarding profile.`,
    );
  }
  return v(
    "edge_udp",
    "fault",
    "edge_unreachable",
    `Neither UDP to ${t.udpEndpoint ?? "the edge"} nor TCP to the edge gets an answer.`,
    "The edge is down or this network blocks it: check the edge, then the firewall.",
  );
}

/** The edge's TLS transport (fallback) answers. */
export function edgeTlsVerdict(f: DoctorFacts): Verdict {
  const x = f.edgeTls;
  if (!x) {
    if (f.tunnel && !f.tunnel.wanted) {
      return v("edge_tls", "skipped", "no_tunnel", "No tunnel is wanted on this network.");
    }
    return unknown("edge_tls", "whether the edge's TLS transport answers");
  }
  if (!x.connected) {
    const udpOk = f.tunnel?.transport === "udp";
    return v(
      "edge_tls",
      udpOk ? "warn" : "fault",
      "tls_blocked",
      `TCP/TLS to ${x.target} fails: ${x.error ?? "no answer"}.`,
      `Allow TCP to ${x.target} on the firewall${udpOk ? " so TLS fallback can work" : ""}.`,
    );
  }
  return v("edge_tls", "ok", "ok", `TLS to ${x.target} completes (${x.connectMs ?? "?"} ms).`);
}

function describeTls(x: TlsFacts): string {
  return `issued by "${x.issuer ?? "?"}" for "${x.subject ?? "?"}"`;
}

/** The certificate the edge presents is the edge's own (no re-signing middlebox). */
export function edgeCertVerdict(f: DoctorFacts): Verdict {
  const seen = [f.edgeApi, f.edgeTls].filter((x): x is TlsFacts => !!x?.connected);
  if (!seen.length) return unknown("edge_cert", "the edge's certificate (no TLS answer)");
  const foreign = seen.find((x) => x.pinned === false);
  if (foreign) {
    return v(
      "edge_cert",
      "fault",
      "middlebox_resigning",
      `The certificate on ${foreign.target} is ${
        describeTls(foreign)
      }, not by the edge CA pinned at enrolment: a middlebox inspecting TLS re-signs it.`,
      `Exempt ${foreign.target} from SSL inspection on the middlebox that issues "${
        foreign.issuer ?? "?"
      }" (firewall or proxy).`,
    );
  }
  if (seen.some((x) => x.pinned === undefined)) {
    return unknown("edge_cert", "whether the certificate chains to the pinned edge CA");
  }
  return v(
    "edge_cert",
    "ok",
    "ok",
    `${seen.map((x) => x.target).join(" and ")}: certificate chains to the pinned edge CA.`,
  );
}

/** Our tunnel interface exists while a tunnel is wanted. */
export function tunnelDeviceVerdict(f: DoctorFacts): Verdict {
  const t = f.tunnel;
  if (!t) return unknown("tunnel_device", "the tunnel interface");
  if (!t.wanted) {
    return v("tunnel_device", "skipped", "no_tunnel", "No tunnel is wanted on this network.");
  }
  if (!t.devicePresent) {
    return v(
      "tunnel_device",
      "fault",
      "tunnel_device_missing",
      `The tunnel interface "${t.device}" does not exist (engine state ${t.state}).`,
      "Restart the connector (console More ▸ Restart, or restart the service) so it makes the interface again.",
    );
  }
  return v("tunnel_device", "ok", "ok", `The tunnel interface "${t.device}" is present.`);
}

/** Handshakes with the edge are recent. */
export function handshakeVerdict(f: DoctorFacts): Verdict {
  const t = f.tunnel;
  if (!t) return unknown("handshake", "the last handshake");
  if (!t.wanted) {
    return v("handshake", "skipped", "no_tunnel", "No tunnel is wanted on this network.");
  }
  if (t.handshakeAgeMs === null) {
    return v(
      "handshake",
      "fault",
      "no_handshake",
      `No handshake with the edge has completed (engine state ${t.state}${
        t.stateReason ? `: ${t.stateReason}` : ""
      }).`,
      "See the edge_udp and edge_tls verdicts for what blocks it.",
    );
  }
  const s = Math.round(t.handshakeAgeMs / 1000);
  if (t.state !== "connected" && tunnelSilent(f)) {
    // The session is still within its lifetime, but the edge stopped answering through it.
    return v(
      "handshake",
      "fault",
      "handshake_unanswered",
      `The last handshake completed ${s} s ago; the edge no longer answers through the tunnel ` +
        `(engine state ${t.state}${t.stateReason ? `: ${t.stateReason}` : ""}).`,
      "See the edge_udp and edge_tls verdicts for what blocks it.",
    );
  }
  if (t.handshakeAgeMs >= HANDSHAKE_STALE_MS) {
    return v(
      "handshake",
      "fault",
      "handshake_stale",
      `The last handshake was ${s} s ago; sessions expire after 180 s.`,
      "See the edge_udp and edge_tls verdicts; restart the connector if they are healthy.",
    );
  }
  return v(
    "handshake",
    "ok",
    "ok",
    `Last handshake ${s} s ago${t.transport ? ` over ${t.transport.toUpperCase()}` : ""}.`,
  );
}

/** A probe through the tunnel that did not run: no tunnel wanted (skipped), or not up (unknown). */
function notMeasured(f: DoctorFacts, hop: "mtu" | "dns", what: string): Verdict {
  if (f.tunnel && !tunnelWanted(f)) {
    return v(hop, "skipped", "no_tunnel", "No tunnel is wanted on this network.");
  }
  return unknown(hop, what);
}

/** Packets of the tunnel's MTU cross the path with don't-fragment set. */
export function mtuVerdict(f: DoctorFacts): Verdict {
  const m = f.mtu;
  if (!m) return notMeasured(f, "mtu", "the path MTU (the tunnel is not up)");
  if (m.largestOk === null) {
    return v(
      "mtu",
      "unknown",
      "mtu_no_answer",
      `No don't-fragment probe to ${m.target} through the tunnel was answered.`,
    );
  }
  if (m.largestOk < m.tunnelMtu) {
    return v(
      "mtu",
      "fault",
      "mtu_too_large",
      `Packets of ${m.tunnelMtu} bytes (the tunnel MTU) do not cross the path with don't-fragment set; ` +
        `the largest that did was ${m.largestOk} bytes${
          m.smallestFailed ? `, ${m.smallestFailed} failed` : ""
        }.`,
      `Set the forwarding profile's MTU to ${m.largestOk} (or fix the link with the small MTU).`,
    );
  }
  return v(
    "mtu",
    "ok",
    "ok",
    `Packets of the full tunnel MTU (${m.tunnelMtu} bytes) reach ${m.target} with don't-fragment set.`,
  );
}

/** DNS through the tunnel answers. */
export function dnsVerdict(f: DoctorFacts): Verdict {
  const d = f.dns;
  if (!d) return notMeasured(f, "dns", "whether DNS through the tunnel works");
  if (!d.answered) {
    return v(
      "dns",
      "fault",
      "dns_no_answer",
      `The edge's resolver ${d.server ?? "?"} does not answer through the tunnel${
        d.error ? `: ${d.error}` : ""
      }.`,
      "Check the tunnel (handshake, MTU) and that the edge's DNS service runs.",
    );
  }
  return v(
    "dns",
    "ok",
    "ok",
    `The edge's resolver ${d.server} answers through the tunnel (${d.ms ?? "?"} ms).`,
  );
}
