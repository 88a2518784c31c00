/**
 * The doctor's judgement: one pure function per hop, from the facts the
 * probes found to a verdict with evidence and a fix. No I/O here, so every
 * field scenario of the troubleshooting guide is a row in a table test
 * (test/diag/doctor_verdicts_test.ts).
 *
 * Thresholds and why:
 * - clock skew over 60 s is a fault: SAML assertions and tokens are commonly
 *   accepted within a minute or so of skew, and "stuck authenticating" is the
 *   guide's first scenario; over 5 s is worth a warning (NTP is not running).
 * - the tunnel's hops (and the 180 s handshake limit) are in tunnel_verdicts.ts.
 * - a round trip to the edge over 150 ms is a far edge: beyond that users feel
 *   every page load, and a nearer edge is usually available.
 */
import type { DoctorFacts, Hop, Verdict } from "./types.ts";
import { unknown, v } from "./verdict.ts";
import {
  dnsVerdict,
  edgeCertVerdict,
  edgeTlsVerdict,
  edgeUdpVerdict,
  handshakeVerdict,
  mtuVerdict,
  tunnelDeviceVerdict,
} from "./tunnel_verdicts.ts";

export { HANDSHAKE_STALE_MS } from "./tunnel_verdicts.ts";

/** Skew (ms) above which authentication fails. */
export const SKEW_FAULT_MS = 60_000;
/** Skew (ms) above which we warn. */
export const SKEW_WARN_MS = 5_000;
/** Round trip (ms) above which the edge counts as far. */
export const FAR_EDGE_MS = 150;

/** Is the connector process running and answering? */
export function serviceVerdict(f: DoctorFacts): Verdict {
  if (!f.service.running) {
    return v(
      "service",
      "fault",
      "service_not_running",
      `The connector does not answer on its local API${
        f.service.error ? `: ${f.service.error}` : ""
      }.`,
      'Start the connector ("portcullis connect", or the system service) and run the doctor again.',
    );
  }
  return v("service", "ok", "ok", `The connector is running: ${f.service.description ?? "up"}.`);
}

/** Enrolled, and the identity belongs to this machine (no cloned image). */
export function identityVerdict(f: DoctorFacts): Verdict {
  const i = f.identity;
  if (!i) return unknown("identity", "whether this device is enrolled");
  if (i.replacedReason && !i.enrolled) {
    return v(
      "identity",
      "fault",
      "cloned_identity",
      `The stored device identity was made on other hardware and was discarded (${i.replacedReason}); ` +
        "this copy is not enrolled.",
      "This disk was cloned from another device: enrol this machine with its own key " +
        '("portcullis connect --key-file FILE"), and build images without the connector\'s data directory.',
    );
  }
  if (!i.enrolled) {
    return v(
      "identity",
      "fault",
      "not_enrolled",
      `This device is not enrolled${i.lastError ? `: ${i.lastError}` : ""}.`,
      'Enrol it with a key from the edge admin ("portcullis connect --key-file FILE").',
    );
  }
  // Re-authentication lapsed: the enrolment stays, the tunnel waits for the user.
  if (f.service?.state === "signin_required") {
    return v(
      "identity",
      "fault",
      "signin_required",
      `Device ${i.deviceId} is enrolled, but its user's sign-in ended${
        i.lastError ? ` (${i.lastError})` : ""
      }; the edge keeps it out of the tunnel until the user signs in again.`,
      "Sign in again: the connector console's Private Access tab (Sign in), or restart " +
        '"portcullis connect --email USER@DOMAIN" on a box without a browser. The device keeps its enrolment.',
    );
  }
  if (i.replacedReason) {
    return v(
      "identity",
      "ok",
      "ok",
      `Enrolled as device ${i.deviceId}; an identity copied from other hardware was replaced by new keys (${i.replacedReason}).`,
    );
  }
  return v(
    "identity",
    "ok",
    "ok",
    `Enrolled as device ${i.deviceId}; identity sealed to this machine.`,
  );
}

/** Our clock against the edge's. */
export function clockVerdict(f: DoctorFacts): Verdict {
  const c = f.clock;
  if (!c || c.skewMs === null) return unknown("clock", "the clock skew (no answer from the edge)");
  const s = Math.round(Math.abs(c.skewMs) / 1000);
  const dir = c.skewMs > 0 ? "ahead of" : "behind";
  const evidence = `This clock is ${s} s ${dir} the edge's (${c.source}).`;
  const fix = "Set the clock right and keep it right: enable NTP (timedatectl set-ntp true), " +
    "then restart the connector.";
  if (Math.abs(c.skewMs) > SKEW_FAULT_MS) {
    return v(
      "clock",
      "fault",
      "clock_skew",
      `${evidence} Sign-in assertions and tokens are refused beyond about a minute.`,
      fix,
    );
  }
  if (Math.abs(c.skewMs) > SKEW_WARN_MS) return v("clock", "warn", "clock_drift", evidence, fix);
  return v("clock", "ok", "ok", evidence);
}

/** The identity provider, when users of this device sign in at one. */
export function idpVerdict(f: DoctorFacts, now: number): Verdict {
  const p = f.idp;
  if (!p) return unknown("idp", "which identity provider applies");
  if (!p.url) {
    return v(
      "idp",
      "skipped",
      "no_idp",
      "No identity provider applies to this device: a machine device, or a local user who signs in at the edge.",
    );
  }
  const who = `The identity provider${p.name ? ` "${p.name}"` : ""} at ${p.url}`;
  if (!p.tls || !p.tls.connected) {
    return v(
      "idp",
      "fault",
      "idp_unreachable",
      `${who} cannot be reached on ${p.tls?.target ?? "its address"}${
        p.tls?.error ? `: ${p.tls.error}` : ""
      }; users cannot sign in from here.`,
      `Allow HTTPS to ${
        p.tls?.target ?? "the identity provider"
      } on this network (captive portal, firewall or proxy), or check that the identity provider is up.`,
    );
  }
  if (p.certExpiresAt !== undefined && p.certExpiresAt !== null && p.certExpiresAt < now) {
    return v(
      "idp",
      "fault",
      "idp_cert_expired",
      `${who} presents a certificate${
        p.tls.subject ? ` for "${p.tls.subject}"` : ""
      } that expired on ${
        new Date(p.certExpiresAt).toISOString()
      }; browsers and the edge refuse it, so sign-in fails.`,
      "Renew the identity provider's TLS certificate (its operator), then sign in again.",
    );
  }
  const tls = p.certExpiresAt
    ? `TLS, certificate valid until ${new Date(p.certExpiresAt).toISOString()}`
    : "TCP (http: no certificate)";
  return v("idp", "ok", "ok", `${who} answers over ${tls} (${p.tls.connectMs ?? "?"} ms).`);
}

/** The forwarding action for this network, and why. */
export function forwardingVerdict(f: DoctorFacts): Verdict {
  const w = f.forwarding;
  if (!w || !w.action) return unknown("forwarding", "the network verdict (no policy yet)");
  const why = w.explanation ?? "";
  if (w.unresolvedHosts.length) {
    return v(
      "forwarding",
      "fault",
      "trusted_hostname_unresolved",
      `Trusted-network criteria rely on resolving ${
        w.unresolvedHosts.map((h) => `"${h}"`).join(", ")
      }, which does not resolve now, so this network counts as ${w.networkType} (action ${w.action}). ${why}`
        .trim(),
      "Base the trusted-network criteria on static properties (DNS servers, DNS search domains) " +
        "instead of host-name resolution.",
    );
  }
  if (w.action === "none" && w.networkType !== "on_trusted") {
    return v(
      "forwarding",
      "fault",
      "forwarding_none_untrusted",
      `The forwarding action on this ${w.networkType} network is "none": traffic goes direct, ` +
        `unprotected. ${why}`.trim(),
      `Set the forwarding profile's ${w.networkType} action to "tunnel".`,
    );
  }
  return v(
    "forwarding",
    "ok",
    "ok",
    `Network ${w.networkType}: action ${w.action}. ${why}`.trim(),
  );
}

/** No captive portal holds the device. */
export function captiveVerdict(f: DoctorFacts): Verdict {
  const c = f.captive;
  if (!c) return unknown("captive_portal", "whether a captive portal is present");
  if (c.state === "portal" || c.state === "expired") {
    return v(
      "captive_portal",
      "fault",
      "captive_portal",
      `A captive portal intercepts web traffic${c.location ? ` (login page ${c.location})` : ""}${
        c.state === "expired" ? "; its login window has ended" : ""
      }.`,
      `Sign in to the network first${
        c.location ? ` at ${c.location}` : ""
      }; the tunnel comes up by itself afterwards.`,
    );
  }
  return v("captive_portal", "ok", "ok", "No captive portal detected.");
}

/** Fail-open (or fail-closed) is not active. */
export function failOpenVerdict(f: DoctorFacts): Verdict {
  const x = f.failOpen;
  if (!x) return unknown("fail_open", "the fail-open state");
  if (x.state === "fail_open") {
    return v(
      "fail_open",
      "fault",
      "fail_open_active",
      `Fail-open is active: you are NOT protected. Traffic goes direct because the edge is unreachable${
        x.reason ? ` (${x.reason})` : ""
      }.`,
      "Bring the edge back or unblock the path to it (see edge_udp and edge_tls); protection resumes by itself.",
    );
  }
  if (x.state === "fail_closed") {
    return v(
      "fail_open",
      "fault",
      "fail_closed_active",
      `Fail-closed is active: traffic is blocked because the edge is unreachable${
        x.reason ? ` (${x.reason})` : ""
      }.`,
      "Bring the edge back or unblock the path to it (see edge_udp and edge_tls).",
    );
  }
  return v(
    "fail_open",
    "ok",
    "ok",
    `Fail-open is not active (policy: ${x.mode} when the edge is unreachable).`,
  );
}

/** Posture checks the access policy depends on. */
export function postureVerdict(f: DoctorFacts): Verdict {
  const p = f.posture;
  if (!p) return unknown("posture", "the posture results (no policy yet)");
  if (p.failing.length) {
    return v(
      "posture",
      "fault",
      "posture_failing",
      `Access withheld for posture: ${
        p.failing.map((x) => `${x.segment} (${x.reason})`).join("; ")
      }.`,
      "Bring the device into line with the posture profile named above; access returns at the next posture report.",
    );
  }
  return v(
    "posture",
    "ok",
    "ok",
    p.passing ? `${p.passing} segment(s) allowed; no posture failure.` : "No posture failure.",
  );
}

/** Distance to the edge and the experience score. */
export function rttVerdict(f: DoctorFacts): Verdict {
  const r = f.rtt;
  if (!r || r.ms === null) return unknown("edge_rtt", "the round trip to the edge");
  const score = r.score !== undefined && r.score !== null ? `; ZDX score ${r.score}` : "";
  if (r.ms > FAR_EDGE_MS) {
    const p = r.path;
    const where = !p
      ? ""
      : p.lastMs < r.ms / 2
      ? ` The direct path to ${p.target} takes ${p.lastMs} ms (mtr, ${p.hops} hop${
        p.hops === 1 ? "" : "s"
      }): the time is added on the tunnel's own way to the edge.`
      : p.slowest
      ? ` mtr to ${p.target}: most of it is added at hop ${p.slowest.hop} (${p.slowest.host}), +${p.slowest.addedMs} ms.`
      : "";
    return v(
      "edge_rtt",
      "warn",
      "far_edge",
      `The round trip to ${r.target} takes ${
        Math.round(r.ms)
      } ms (over ${FAR_EDGE_MS} ms)${score}.${where}`,
      "Use a nearer edge, or look for the slow link on the path (mtr to the edge).",
    );
  }
  return v("edge_rtt", "ok", "ok", `Round trip to ${r.target}: ${Math.round(r.ms)} ms${score}.`);
}

/** Every hop's verdict, in chain order; with the service down the rest cannot be told. */
export function judge(f: DoctorFacts, now: number): Verdict[] {
  const service = serviceVerdict(f);
  if (!f.service.running) {
    return [service];
  }
  return [
    service,
    identityVerdict(f),
    clockVerdict(f),
    idpVerdict(f, now),
    edgeUdpVerdict(f),
    edgeTlsVerdict(f),
    edgeCertVerdict(f),
    tunnelDeviceVerdict(f),
    handshakeVerdict(f),
    forwardingVerdict(f),
    captiveVerdict(f),
    failOpenVerdict(f),
    mtuVerdict(f),
    dnsVerdict(f),
    postureVerdict(f),
    rttVerdict(f),
  ];
}

/** Exit code and overall word: any fault or warning is a finding (1); else any unknown (2). */
export function overall(verdicts: Verdict[]): {
  overall: "healthy" | "fault" | "unknown";
  exitCode: 0 | 1 | 2;
  firstFault: Hop | null;
} {
  const bad = verdicts.find((x) => x.status === "fault") ??
    verdicts.find((x) => x.status === "warn");
  if (bad) return { overall: "fault", exitCode: 1, firstFault: bad.hop };
  if (verdicts.some((x) => x.status === "unknown")) {
    return { overall: "unknown", exitCode: 2, firstFault: null };
  }
  return { overall: "healthy", exitCode: 0, firstFault: null };
}
