/**
 * The OIDC identity provider the sign-in tests talk to: `oidc-provider`
 * (npm) run under Node, not Deno, so the IdP is not our runtime. It listens
 * on loopback, signs in with its own login form (passwords checked), offers
 * the device authorization grant, and can rotate its signing key.
 *
 *   await using idp = await OidcIdp.start({ clients: [...], accounts: [...] });
 *   idp.issuer  // "http://127.0.0.1:PORT"
 *
 * The package is installed with npm into a cache directory the first time
 * (network: the npm registry), then reused.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The oidc-provider release the tests run. */
export const OIDC_PROVIDER_VERSION = "9.13.3";
const CACHE = join(
  Deno.env.get("HOME") ?? "/root",
  ".cache",
  "portcullis-test",
  `oidc-provider-${OIDC_PROVIDER_VERSION}`,
);

/** An account at the test IdP. */
export interface OidcAccount {
  email: string;
  password: string;
  name: string;
  groups: string[];
}

/** A client registered at the test IdP (oidc-provider client metadata). */
export interface OidcClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  grant_types?: string[];
  response_types?: string[];
  token_endpoint_auth_method?: string;
}

/** The accounts most tests use. */
export const OIDC_ACCOUNTS: OidcAccount[] = [
  {
    email: "ana@corp.example",
    password: "ana-password-1",
    name: "Ana Lima",
    groups: ["eng", "staff"],
  },
  { email: "bo@corp.example", password: "bo-password-2", name: "Bo Berg", groups: ["sales"] },
];

/** True when Node is installed. */
export function nodeAvailable(): boolean {
  try {
    return Deno.statSync("/usr/bin/node").isFile;
  } catch {
    return false;
  }
}

async function ensureInstalled(): Promise<string> {
  const marker = join(CACHE, "node_modules", "oidc-provider", "package.json");
  try {
    await Deno.stat(marker);
    return CACHE;
  } catch { /* install below */ }
  await Deno.mkdir(CACHE, { recursive: true });
  await Deno.writeTextFile(join(CACHE, "package.json"), '{"private":true,"type":"module"}\n');
  const out = await new Deno.Command("npm", {
    args: [
      "install",
      "--no-audit",
      "--no-fund",
      "--silent",
      "--prefix",
      CACHE,
      `oidc-provider@${OIDC_PROVIDER_VERSION}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`Cannot install oidc-provider: ${new TextDecoder().decode(out.stderr)}`);
  }
  return CACHE;
}

/** A running oidc-provider. */
export class OidcIdp implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #log: string[];

  private constructor(
    readonly issuer: string,
    child: Deno.ChildProcess,
    lines: AsyncIterator<string>,
    log: string[],
  ) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#lines = lines;
    this.#log = log;
  }

  /** Starts the IdP with these clients and accounts. */
  static async start(
    o: {
      clients: OidcClient[];
      accounts?: OidcAccount[];
      port?: number;
      /** Run inside this network namespace (its loopback), e.g. beside an edge in a lab. */
      netns?: string;
    },
  ): Promise<OidcIdp> {
    const dir = await ensureInstalled();
    const script = join(dir, "server.mjs");
    await Deno.copyFile(
      join(
        dirname(fileURLToPath(import.meta.url)),
        "..",
        "..",
        "fixtures",
        "oidc",
        "idp_server.mjs",
      ),
      script,
    );
    const cfg = { clients: o.clients, accounts: o.accounts ?? OIDC_ACCOUNTS, port: o.port };
    const argv = [script, JSON.stringify(cfg)];
    const child = new Deno.Command(o.netns ? "ip" : "/usr/bin/node", {
      args: o.netns ? ["netns", "exec", o.netns, "/usr/bin/node", ...argv] : argv,
      cwd: dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const log: string[] = [];
    // Keep stderr for failures.
    (async () => {
      for await (const l of child.stderr.pipeThrough(new TextDecoderStream())) log.push(l);
    })().catch(() => {});
    const lines = lineReader(child.stdout);
    const deadline = setTimeout(() => child.kill("SIGKILL"), 20_000);
    try {
      for (;;) {
        const { value, done } = await lines.next();
        if (done) throw new Error(`oidc-provider exited before listening: ${log.join("")}`);
        const m = /^listening (\d+)$/.exec(value);
        if (m) return new OidcIdp(`http://127.0.0.1:${m[1]}`, child, lines, log);
      }
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      throw e;
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Replaces the signing key with a new one (new kid); tokens signed before no longer verify. */
  async rotateKey(): Promise<void> {
    await this.#command({ rotate: true }, "rotated");
  }

  /** Keeps signing with the current key but publishes only a new one: its tokens no longer verify. */
  async retireKey(): Promise<void> {
    await this.#command({ retire: true }, "retired");
  }

  /** Runs the IdP's clock `ms` ahead of the real one (time passing, with the edge's clock alike). */
  async setClockOffset(ms: number): Promise<void> {
    await this.#command({ clockOffsetMs: ms }, "clock");
  }

  /** How often relying parties fetched the JWKS so far. */
  async jwksFetches(): Promise<number> {
    return JSON.parse((await this.#command({ stats: true }, "stats ")).slice(6)).jwksFetches;
  }

  async #command(cmd: Record<string, unknown>, answer: string): Promise<string> {
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
    for (;;) {
      const { value, done } = await this.#lines.next();
      if (done) throw new Error("oidc-provider exited");
      if (value.startsWith(answer)) return value;
    }
  }

  /** What the IdP wrote to stderr. */
  get log(): string {
    return this.#log.join("");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stdin.close().catch(() => {});
    try {
      this.#child.kill("SIGTERM");
    } catch { /* already gone */ }
    await this.#child.status;
  }
}

function lineReader(stream: ReadableStream<Uint8Array<ArrayBuffer>>): AsyncIterator<string> {
  return (async function* () {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        yield buf.slice(0, nl);
        buf = buf.slice(nl + 1);
      }
    }
  })();
}
