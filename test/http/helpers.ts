/**
 * Test fixture for the edge app: an in-memory store, a ManualClock, the
 * memory tunnel port and an admin API token, plus request builders.
 */
import { generateKeyPairSync, sign as edSign } from "node:crypto";
import { ManualClock } from "../../src/clock.ts";
import type { EdgeContext } from "../../src/edge/context.ts";
import { MemoryTunnelPort } from "../../src/edge/dataplane_port.ts";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { DlpService } from "../../src/edge/dlp.ts";
import { createEdgeSaas } from "../../src/edge/saas.ts";
import { InspectionCa } from "../../src/proxy/inspection_ca.ts";
import {
  loadCategories,
  SHIPPED_CATEGORIES,
  WebSecurityService,
} from "../../src/edge/web_security.ts";
import type { FetchFn } from "../../src/saas/mod.ts";
import { PolicyService } from "../../src/edge/policy.ts";
import { EdgePostureSource } from "../../src/edge/access/posture_source.ts";
import { postureSigningMessage } from "../../src/posture/report.ts";
import { DeviceSignal } from "../../src/edge/signal.ts";
import { EdgeRegistry } from "../../src/fleet/edge_registry.ts";
import { ReleaseService } from "../../src/edge/releases.ts";
import { createEdgeApp } from "../../src/http/app_edge.ts";
import type { EnrollRequest } from "../../src/http/api/schemas.ts";
import { fingerprintHash, sha256Hex } from "../../src/identity/secrets.ts";
import { LoginRateLimiter } from "../../src/identity/rate_limit.ts";
import { createUser } from "../../src/identity/users.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { testStore } from "./test_store.ts";

/** Cheap scrypt parameters for tests. */
export const TEST_SCRYPT = { N: 1024, r: 8, p: 1 };

/** Random base64 32-byte key. */
export function key32(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}

/** A random MAC address. */
export function mac(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(6)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join(":");
}

/** Builds an edge app over a fresh store (in-memory SQLite, or PostgreSQL: see test_store.ts). */
export async function fixture(
  opts: {
    sseKeepaliveMs?: number;
    tunnel?: MemoryTunnelPort;
    /** Where SaaS tenants get tokens and scan files (a local issuer and Graph emulator). */
    saas?: { authorityUrl: string; graphUrl: string; fetch: FetchFn };
    /** Where the manual clock starts (default 2026-01-01); sign-in tests against a real IdP use now. */
    clockStart?: number;
    /** The edge's web proxy as devices reach it (default: none). */
    webProxy?: { address: string; port: number };
    /** The edge's data directory (releases' bytes); default: a fresh path, made on first use. */
    dataDir?: string;
  } = {},
) {
  const clock = new ManualClock(opts.clockStart ?? Date.UTC(2026, 0, 1));
  const store = await testStore();
  const notifier = new Notifier(store, clock);
  const tunnel = opts.tunnel ?? new MemoryTunnelPort();
  const posture = new EdgePostureSource(store, clock);
  const edgePublicKey = key32();
  const endpoints = [{ transport: "udp" as const, host: "edge.test", port: 51820 }];
  const fleet = new EdgeRegistry({
    store,
    clock,
    notifier,
    identity: {
      name: "edge-test",
      region: "",
      wgPublicKey: edgePublicKey,
      endpoints,
      apiUrl: "https://edge.test:8443",
      bootstrapUrl: "http://edge.test:8081",
      caPem: "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n",
      version: "0.0.0",
    },
  });
  const policy = new PolicyService(store, clock, notifier, {
    edges: () => fleet.healthy(),
    edgeAddress: "100.64.0.1",
    posture,
    webProxy: opts.webProxy ?? null,
  });
  const dlp = new DlpService(store, clock, notifier);
  const saas = createEdgeSaas({
    store,
    clock,
    notifier,
    dlp,
    authorityUrl: opts.saas?.authorityUrl ?? "https://login.microsoftonline.com",
    graphUrl: opts.saas?.graphUrl ?? "https://graph.microsoft.com/v1.0",
    fetch: opts.saas?.fetch,
  });
  const web = new WebSecurityService(
    store,
    clock,
    notifier,
    dlp,
    await loadCategories([SHIPPED_CATEGORIES]),
    await InspectionCa.ephemeral(),
  );
  const ctx: EdgeContext = {
    store,
    clock,
    notifier,
    tunnel,
    policy,
    dlp,
    saas,
    web,
    network: "100.64.0.0/16",
    edgeAddress: "100.64.0.1",
    edgePublicKey,
    endpoints,
    apiUrl: "https://edge.test:8443",
    caSha256: "a".repeat(64),
    posture,
    c2cChanged: new DeviceSignal(),
    subjectChanged: new DeviceSignal(),
    fleet,
    // Created on the first upload only; tests that upload remove it.
    releases: new ReleaseService(
      store,
      clock,
      notifier,
      opts.dataDir ?? `${Deno.env.get("TMPDIR") ?? "/tmp"}/pcl-edge-${crypto.randomUUID()}`,
    ),
  };
  fleet.onChange(() => policy.edgesChanged());
  const rateLimiter = new LoginRateLimiter(clock);
  const app = createEdgeApp({
    ctx,
    sseKeepaliveMs: opts.sseKeepaliveMs ?? 15_000,
    scrypt: TEST_SCRYPT,
    rateLimiter,
  });
  const admin = await createUser(store, clock, {
    username: "root",
    password: "correct horse battery",
    role: "admin",
  }, TEST_SCRYPT);
  const token = "pca_" + "t".repeat(40);
  store.apiTokens.insert({
    id: "tok_test",
    tokenHash: sha256Hex(token),
    name: "test",
    userId: admin.user.id,
    createdAt: clock.now(),
    lastUsedAt: null,
  });

  /** Creates an enrolment key directly in the store. */
  const newKey = (
    o: { reusable?: boolean; expiresInMs?: number | null; group?: string | null } = {},
  ) =>
    createEnrollmentKey(store, clock, {
      reusable: o.reusable ?? false,
      expiresInMs: o.expiresInMs === undefined ? 3600_000 : o.expiresInMs,
      group: o.group ?? null,
      createdBy: "test",
      apiUrl: ctx.apiUrl,
      caSha256: ctx.caSha256,
    });

  /** A valid enrolment body for a new random device. */
  const enrollBody = (key: string, over: Partial<EnrollRequest> = {}): EnrollRequest => ({
    key,
    hostname: `host-${crypto.randomUUID().slice(0, 8)}`,
    os: "linux",
    osVersion: "Debian 13",
    connectorVersion: "0.1.0",
    fingerprint: { machineId: crypto.randomUUID().replaceAll("-", ""), macs: [mac(), mac()] },
    wgPublicKey: key32(),
    signingPublicKey: key32(),
    ...over,
  });

  /** JSON request helper. */
  const req = (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> =>
    Promise.resolve(app.request(path, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    }));

  /** Admin request with the API token. */
  const adminReq = (method: string, path: string, body?: unknown) =>
    req(method, path, body, { authorization: `Bearer ${token}` });

  /** A real Ed25519 signing key pair: its public key (base64) and a signer. */
  const signer = () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const x = (publicKey.export({ format: "jwk" }) as { x: string }).x;
    return {
      publicKey: Buffer.from(x, "base64url").toString("base64"),
      sign: (message: string | Uint8Array) =>
        Buffer.from(
          edSign(
            null,
            typeof message === "string" ? new TextEncoder().encode(message) : message,
            privateKey,
          ),
        ).toString("base64"),
    };
  };

  /** Enrols a device and returns its request, response and auth headers. */
  const enroll = async (over: Partial<EnrollRequest> = {}, keyString?: string) => {
    const body = enrollBody(keyString ?? newKey().key, over);
    const res = await req("POST", "/api/v1/enroll", body);
    const json = await res.json();
    if (res.status !== 200) throw new Error(`enrol failed: ${res.status} ${JSON.stringify(json)}`);
    const headers = {
      authorization: `Bearer ${json.credential}`,
      "x-device-fingerprint": fingerprintHash(body.fingerprint),
    };
    return { body, json, headers };
  };

  return {
    app,
    clock,
    store,
    notifier,
    tunnel,
    policy,
    ctx,
    admin,
    token,
    rateLimiter,
    newKey,
    enrollBody,
    signer,
    req,
    adminReq,
    enroll,
  };
}

/** A posture report as the connector builds it: the payload text and its signature by `sig`. */
export function signedPosture(
  sig: { sign: (m: Uint8Array) => string },
  deviceId: string,
  collectedAt: number,
  facts: Record<string, unknown>,
) {
  const payload = JSON.stringify({
    deviceId,
    collectedAt: new Date(collectedAt).toISOString(),
    facts,
  });
  return { payload, signature: sig.sign(postureSigningMessage(payload)) };
}
