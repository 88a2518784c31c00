/**
 * The world SaaS tests run in: a local identity platform (issuer.ts) and a
 * Graph emulator (graph_emulator.ts) over HTTPS with one test CA, and a
 * real edge control plane on a data directory, configured the way an
 * operator would (saasAuthorityUrl, saasGraphUrl, saasCaFile), with its
 * REST API called in-process as an admin API token. `restart()` closes the
 * edge and opens it again on the same directory, as a restarted edge
 * would, resuming running scans.
 */
import { loadConfig } from "../../src/config.ts";
import { type EdgeControlPlane, startEdgeControlPlane } from "../../src/edge/control_plane.ts";
import { createEdgeApp } from "../../src/http/app_edge.ts";
import { sha256Hex } from "../../src/identity/secrets.ts";
import { makeCaAndServer } from "../connector/tls_fixture.ts";
import { GraphEmulator } from "./graph_emulator.ts";
import { startIssuer, type TestIssuer, trustingFetch } from "./issuer.ts";

/** The directory (tenant) ID every test tenant lives in. */
export const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/** Scopes of the guide's APIs (as apps.ts has them). */
export const SCOPES = {
  graph: "https://graph.microsoft.com/.default",
  o365_management: "https://manage.office.com/.default",
  azure_storage: "https://storage.azure.com/.default",
  azure_service_management: "https://management.azure.com/.default",
  mip_sync: "870c4f2e-85b6-4d43-bdda-6ed9a579b725/.default",
  rms: "https://aadrm.com/.default",
} as const;

const SCRYPT = { N: 1024, r: 8, p: 1 };

/** Issuer, Graph emulator and the CA file that trusts both. */
export interface SaasWorld {
  issuer: TestIssuer;
  graph: GraphEmulator;
  caFile: string;
  dir: string;
  close(): Promise<void>;
}

/** Starts the issuer and the emulator. */
export async function saasWorld(): Promise<SaasWorld> {
  const dir = await Deno.makeTempDir({ prefix: "pc-saas-" });
  const tls = await makeCaAndServer("pc-saas-test-ca");
  const issuer = await startIssuer(TENANT, tls);
  const trust = trustingFetch(tls);
  const graph = await new GraphEmulator().start(tls, issuer, trust.fetch);
  trust.close();
  const caFile = `${dir}/saas-ca.pem`;
  await Deno.writeTextFile(caFile, tls.caPem);
  return {
    issuer,
    graph,
    caFile,
    dir,
    async close() {
      await graph.stop();
      await issuer.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A running edge over the world. */
export interface TestEdge {
  cp: EdgeControlPlane;
  app: ReturnType<typeof createEdgeApp>;
  /** Admin API request with the test token. */
  api(method: string, path: string, body?: unknown): Promise<Response>;
  /** Closes this edge and opens a new one on the same data directory. */
  restart(): Promise<TestEdge>;
  close(): Promise<void>;
}

/** Starts an edge on `dataDir` pointed at the world. */
export async function startEdge(world: SaasWorld, dataDir: string): Promise<TestEdge> {
  const config = await loadConfig("edge", {
    flags: {
      "data-dir": dataDir,
      "public-host": "edge.test",
      "saas-authority-url": world.issuer.url,
      "saas-graph-url": world.graph.graphUrl,
      "saas-ca-file": world.caFile,
    },
  });
  const cp = await startEdgeControlPlane(config, { localPrefixes: () => [], scrypt: SCRYPT });
  const app = createEdgeApp({ ctx: cp.ctx, scrypt: SCRYPT });
  const token = "pca_" + "s".repeat(40);
  if (!cp.store.apiTokens.byHash(sha256Hex(token))) {
    const admin = cp.store.users.list().find((u) => u.role === "admin")!;
    cp.store.apiTokens.insert({
      id: "tok_saas",
      tokenHash: sha256Hex(token),
      name: "saas-test",
      userId: admin.id,
      createdAt: Date.now(),
      lastUsedAt: null,
    });
  }
  cp.ctx.saas.scanner.resume();
  const edge: TestEdge = {
    cp,
    app,
    api: (method, path, body) =>
      Promise.resolve(app.request(path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      })),
    async restart() {
      await cp.close();
      return await startEdge(world, dataDir);
    },
    close: () => cp.close(),
  };
  return edge;
}

/** Registers an application in the issuer's directory with grants per scope. */
export function register(
  world: SaasWorld,
  clientId: string,
  secret: string,
  grants: Partial<Record<keyof typeof SCOPES, string[]>>,
  certificatePem?: string,
): void {
  const byScope: Record<string, string[]> = {};
  for (const [api, roles] of Object.entries(grants)) {
    byScope[SCOPES[api as keyof typeof SCOPES]] = roles!;
  }
  world.issuer.apps.set(clientId, { secret, certificatePem, grants: byScope });
}
