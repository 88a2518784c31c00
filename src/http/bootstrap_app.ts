/**
 * The edge's plain-HTTP bootstrap listener (default 0.0.0.0:8081).
 *
 * - `GET /ca.pem`: the edge CA certificate. Served without TLS on purpose: a
 *   connector has only the CA's SHA-256 from its enrolment key, fetches the
 *   certificate here and checks the hash before trusting anything signed by it.
 * - `GET /generate_204`: the captive-portal probe. Answers 204 with the
 *   request's challenge header echoed back, which a portal cannot forge
 *   because the challenge is fresh and random for each probe.
 * - `GET /egress`: `{"ip": "<the caller's address as seen here>"}`, for the
 *   egress-address criterion of trusted-network detection.
 */
import { Hono } from "hono";
import { canonicalIp } from "../policy/cidr.ts";
import { CHALLENGE_HEADER, PROBE_PATH, RESPONSE_HEADER } from "../connector/network/captive.ts";

/** What the bootstrap app serves. */
export interface BootstrapDeps {
  caCertPem: string;
  caSha256: string;
}

/** Builds the bootstrap app. */
export function createBootstrapApp(deps: BootstrapDeps): Hono {
  const app = new Hono();
  app.get("/ca.pem", (c) => {
    c.header("Content-Type", "application/x-pem-file");
    c.header("X-Portcullis-CA-SHA256", deps.caSha256);
    c.header("Cache-Control", "no-store");
    return c.body(deps.caCertPem);
  });
  app.get(PROBE_PATH, (c) => {
    const challenge = c.req.header(CHALLENGE_HEADER) ?? "";
    c.header("Cache-Control", "no-store");
    // Echo only a sane token: never reflect arbitrary header content.
    if (/^[A-Za-z0-9_-]{8,128}$/.test(challenge)) c.header(RESPONSE_HEADER, challenge);
    return c.body(null, 204);
  });
  // The egress-address criterion of trusted-network detection: our address
  // as the edge sees it. Public information about the caller only.
  app.get("/egress", (c) => {
    const env = c.env as { remoteAddr?: { hostname?: unknown } } | undefined;
    const raw = env?.remoteAddr?.hostname;
    const ip = typeof raw === "string" ? canonicalIp(raw.replace(/^::ffff:(?=\d+\.)/, "")) : null;
    c.header("Cache-Control", "no-store");
    if (!ip) {
      return c.json(
        { error: { code: "unknown_address", message: "Cannot tell your address." } },
        503,
      );
    }
    return c.json({ ip });
  });
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `No such path "${c.req.path}".` } }, 404)
  );
  return app;
}
