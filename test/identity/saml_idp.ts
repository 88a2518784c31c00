/**
 * A real SAML 2.0 identity provider for tests: Debian's simplesamlphp (1.19)
 * served by `php -S` on loopback, with its own freshly generated signing key,
 * an `exampleauth:UserPass` source whose users carry e-mail, display name and
 * a multi-valued `groups` attribute, and our SP metadata loaded from the XML
 * our library publishes. All configuration lives in a temporary directory;
 * `stop()` (or `await using`) ends the PHP process and removes the directory,
 * also when a test fails.
 *
 *   await using idp = await SimpleSamlIdp.start({ spMetadata: [sp.metadataXml()] });
 *   const idpConfig = parseIdpMetadata(await idp.metadataXml());
 *   const post = await idp.signIn(loginUrl, "ana@corp.example", "ana-password");
 *
 * Besides `signIn` (plain HTTP with a cookie jar), the IdP serves a normal
 * login form, so a browser test can drive `loginUrl` in Chromium.
 */
import { sh, waitUntil } from "../e2e/netns.ts";

const SSP_ROOT = "/usr/share/simplesamlphp";

/** One account of the IdP's user/password source. */
export interface SamlIdpUser {
  /** Login name (also the `uid` attribute); must not contain ":". */
  username: string;
  password: string;
  /** The `email` attribute (also the NameID for the emailAddress format). */
  email: string;
  /** The `displayName` attribute. */
  displayName: string;
  /** The multi-valued `groups` attribute. */
  groups: string[];
}

/** The default accounts: ana in two groups, bob in one. */
export const SAML_USERS: readonly SamlIdpUser[] = [
  {
    username: "ana@corp.example",
    password: "ana-Password-1",
    email: "ana@corp.example",
    displayName: "Ana Lima",
    groups: ["engineering", "staff"],
  },
  {
    username: "bob@corp.example",
    password: "bob-Password-1",
    email: "bob@corp.example",
    displayName: "Bob Stone",
    groups: ["sales"],
  },
];

/** Attribute names the IdP releases, for the SP configuration. */
export const SAML_IDP_ATTRIBUTES = {
  groups: "groups",
  email: "email",
  displayName: "displayName",
} as const;

/** Options of {@link SimpleSamlIdp.start}. */
export interface SamlIdpOptions {
  /** SP metadata documents (EntityDescriptor XML) the IdP trusts; more can be added with `trustSp`. */
  spMetadata?: string[];
  /** Accounts (default {@link SAML_USERS}). */
  users?: readonly SamlIdpUser[];
  /** Also publish a second ("next") signing certificate, as during a key rotation. */
  rotation?: boolean;
  /** Assertion lifetime in seconds (simplesamlphp's `assertion.lifetime`, default 300). */
  assertionLifetimeSec?: number;
}

/** The fields an IdP auto-submits to the SP's ACS URL. */
export interface SamlPost {
  /** Where the IdP's form posts (the SP's ACS URL). */
  acsUrl: string;
  SAMLResponse: string;
  RelayState?: string;
}

/** True when php, its DOM extension and simplesamlphp are installed. */
export function simpleSamlAvailable(): boolean {
  try {
    Deno.statSync(`${SSP_ROOT}/www/_include.php`);
    Deno.statSync("/usr/bin/php");
    const dom = new Deno.Command("/usr/bin/php", {
      args: ["-r", "exit(class_exists('DOMDocument') ? 0 : 1);"],
    })
      .outputSync();
    return dom.success;
  } catch {
    return false;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A PHP file that loads `name` (JSON next to it) into `$variable`: no PHP string escaping to get wrong. */
function phpJsonLoader(variable: string, name: string): string {
  return `<?php\n$${variable} = json_decode(file_get_contents(__DIR__ . '/${name}'), true, 64, JSON_THROW_ON_ERROR);\n`;
}

async function keyPair(dir: string, name: string): Promise<string> {
  await sh([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-sha256",
    "-days",
    "7",
    "-subj",
    `/CN=simplesamlphp test IdP ${name}`,
    "-keyout",
    `${dir}/${name}.key`,
    "-out",
    `${dir}/${name}.crt`,
  ]);
  return await Deno.readTextFile(`${dir}/${name}.crt`);
}

/** A running simplesamlphp IdP. */
export class SimpleSamlIdp implements AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  readonly baseUrl: string;
  /** The IdP's entity ID (its metadata URL, as simplesamlphp names it). */
  readonly entityId: string;
  /** Where the IdP publishes its metadata. */
  readonly metadataUrl: string;
  /** The PEM certificate the IdP signs with. */
  readonly certificate: string;
  /** The second published certificate when started with `rotation`. */
  readonly nextCertificate?: string;
  readonly #dir: string;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: Promise<string>;
  readonly #sps: string[];
  #stopped = false;

  private constructor(
    init: {
      baseUrl: string;
      dir: string;
      child: Deno.ChildProcess;
      stderr: Promise<string>;
      sps: string[];
      certificate: string;
      nextCertificate?: string;
    },
  ) {
    this.baseUrl = init.baseUrl;
    this.entityId = `${init.baseUrl}/saml2/idp/metadata.php`;
    this.metadataUrl = this.entityId;
    this.certificate = init.certificate;
    this.nextCertificate = init.nextCertificate;
    this.#dir = init.dir;
    this.#child = init.child;
    this.#stderr = init.stderr;
    this.#sps = init.sps;
  }

  /** Writes a configuration into a temporary directory and starts `php -S` on a free loopback port. */
  static async start(opts: SamlIdpOptions): Promise<SimpleSamlIdp> {
    const dir = await Deno.makeTempDir({ prefix: "pcl-saml-idp-" });
    try {
      for (let attempt = 1;; attempt++) {
        try {
          return await SimpleSamlIdp.#startIn(dir, opts);
        } catch (e) {
          // Another process may take the port between our probe and php's bind.
          if (attempt >= 3 || !String(e).includes("Address already in use")) throw e;
        }
      }
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  static async #startIn(dir: string, opts: SamlIdpOptions): Promise<SimpleSamlIdp> {
    const port = freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const entityId = `${baseUrl}/saml2/idp/metadata.php`;
    for (const sub of ["config", "metadata", "cert", "log", "tmp", "data", "sessions", "sp"]) {
      await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
    }
    const certificate = await keyPair(`${dir}/cert`, "idp");
    const nextCertificate = opts.rotation ? await keyPair(`${dir}/cert`, "idp-next") : undefined;
    const spFile = `${dir}/sp/sps.xml`;
    await writeSpMetadata(spFile, opts.spMetadata ?? []);
    const random = () => crypto.randomUUID().replaceAll("-", "");
    const config = {
      baseurlpath: `${baseUrl}/`,
      certdir: `${dir}/cert/`,
      loggingdir: `${dir}/log/`,
      datadir: `${dir}/data/`,
      tempdir: `${dir}/tmp`,
      metadatadir: `${dir}/metadata/`,
      technicalcontact_name: "Portcullis tests",
      technicalcontact_email: "tests@portcullis.invalid",
      timezone: "UTC",
      secretsalt: random(),
      "auth.adminpassword": random(),
      "admin.protectindexpage": true,
      "admin.protectmetadata": false,
      showerrors: true,
      errorreporting: false,
      debug: { saml: false, backtraces: true, validatexml: false },
      "logging.level": 7,
      "logging.handler": "file",
      "logging.logfile": "simplesamlphp.log",
      "enable.saml20-idp": true,
      "enable.shib13-idp": false,
      "module.enable": { exampleauth: true, core: true, saml: true, admin: false },
      "session.cookie.secure": false,
      "session.phpsession.savepath": `${dir}/sessions`,
      "session.duration": 3600,
      "store.type": "phpsession",
      "language.available": ["en"],
      "language.default": "en",
      "assertion.lifetime": opts.assertionLifetimeSec ?? 300,
      "metadata.sources": [
        { type: "flatfile", directory: `${dir}/metadata` },
        { type: "xml", file: spFile },
      ],
    };
    const users = opts.users ?? SAML_USERS;
    const userSource: Record<string, unknown> = { 0: "exampleauth:UserPass" };
    for (const u of users) {
      if (u.username.includes(":")) {
        throw new Error(`Cannot add IdP user "${u.username}": ":" is not allowed`);
      }
      userSource[`${u.username}:${u.password}`] = {
        uid: [u.username],
        [SAML_IDP_ATTRIBUTES.email]: [u.email],
        [SAML_IDP_ATTRIBUTES.displayName]: [u.displayName],
        [SAML_IDP_ATTRIBUTES.groups]: u.groups,
      };
    }
    const idpHosted = {
      [entityId]: {
        host: "__DEFAULT__",
        privatekey: "idp.key",
        certificate: "idp.crt",
        ...(nextCertificate
          ? { new_privatekey: "idp-next.key", new_certificate: "idp-next.crt" }
          : {}),
        auth: "example-userpass",
        "signature.algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "attributes.NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
        "simplesaml.nameidattribute": SAML_IDP_ATTRIBUTES.email,
        "saml20.sign.assertion": true,
        "saml20.sign.response": true,
      },
    };
    const files: Record<string, string> = {
      "config/config.json": JSON.stringify(config),
      "config/config.php": phpJsonLoader("config", "config.json"),
      "config/authsources.json": JSON.stringify({ "example-userpass": userSource }),
      "config/authsources.php": phpJsonLoader("config", "authsources.json"),
      "metadata/saml20-idp-hosted.json": JSON.stringify(idpHosted),
      "metadata/saml20-idp-hosted.php": phpJsonLoader("metadata", "saml20-idp-hosted.json"),
    };
    for (const [name, body] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, body);
    }

    const child = new Deno.Command("/usr/bin/php", {
      args: [
        "-d",
        `session.save_path=${dir}/sessions`,
        "-d",
        "display_errors=stderr",
        "-d",
        "log_errors=0",
        "-S",
        `127.0.0.1:${port}`,
        "-t",
        `${SSP_ROOT}/www`,
      ],
      env: { SIMPLESAMLPHP_CONFIG_DIR: `${dir}/config` },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = collect(child.stderr);
    const sps = [...(opts.spMetadata ?? [])];
    const idp = new SimpleSamlIdp({
      baseUrl,
      dir,
      child,
      stderr,
      sps,
      certificate,
      nextCertificate,
    });
    let exited = false;
    child.status.then(() => (exited = true));
    try {
      await waitUntil(
        `simplesamlphp to answer on ${baseUrl}`,
        async () => {
          if (exited) throw new Error("php exited");
          const r = await fetch(idp.metadataUrl);
          await r.body?.cancel();
          return r.status === 200;
        },
        15_000,
        50,
      );
    } catch (e) {
      await idp.#kill();
      throw new Error(
        `Cannot start simplesamlphp on ${baseUrl}: ${e}; php said: ${(await stderr).trim()}`,
      );
    }
    return idp;
  }

  /**
   * Adds an SP the IdP trusts (for a test that learns its SP's URLs only
   * after the IdP is up); simplesamlphp reads metadata on every request.
   */
  async trustSp(spMetadataXml: string): Promise<void> {
    this.#sps.push(spMetadataXml);
    await writeSpMetadata(`${this.#dir}/sp/sps.xml`, this.#sps);
  }

  /** The IdP's metadata document, as served. */
  async metadataXml(): Promise<string> {
    const r = await fetch(this.metadataUrl);
    if (!r.ok) {
      throw new Error(`Cannot fetch the IdP metadata from ${this.metadataUrl}: HTTP ${r.status}`);
    }
    return await r.text();
  }

  /** simplesamlphp's own log (for failure messages). */
  async log(): Promise<string> {
    return await Deno.readTextFile(`${this.#dir}/log/simplesamlphp.log`).catch(() => "");
  }

  /** The last error and warning lines of simplesamlphp's log, for a failure message. */
  async problems(): Promise<string> {
    const lines = (await this.log()).split("\n").filter((l) =>
      /\b(ERROR|WARNING|CRITICAL)\b/.test(l) && !/\] (\d+ \/|Backtrace)/.test(l)
    );
    return lines.slice(-8).join("\n") || "(nothing)";
  }

  /**
   * Follows `loginUrl` (our AuthnRequest redirect) like a browser without
   * JavaScript: through the IdP's redirects to its login form, submits the
   * user name and password, and returns the auto-post form's fields instead
   * of posting them.
   */
  async signIn(loginUrl: string, username: string, password: string): Promise<SamlPost> {
    const jar = new CookieJar();
    let res = await jar.fetch(loginUrl);
    for (let step = 0; step < 10; step++) {
      const html = await res.text();
      const form = parseForm(html, res.url);
      if (!form) {
        throw new Error(
          `Cannot sign in at the IdP: page ${res.url} (HTTP ${res.status}) has no form: ${
            html.slice(0, 500)
          }; simplesamlphp logged: ${await this.problems()}`,
        );
      }
      if (form.fields.SAMLResponse !== undefined) {
        return {
          acsUrl: form.action,
          SAMLResponse: form.fields.SAMLResponse,
          RelayState: form.fields.RelayState,
        };
      }
      if (!("username" in form.fields) && !("password" in form.fields)) {
        throw new Error(
          `Cannot sign in at the IdP: unexpected form on ${res.url}: ${
            html.slice(0, 500)
          }; simplesamlphp logged: ${await this.problems()}`,
        );
      }
      if (step > 0 && html.includes("Incorrect username or password")) {
        throw new Error(
          `Cannot sign in at the IdP as "${username}": incorrect username or password`,
        );
      }
      res = await jar.fetch(form.action, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ ...form.fields, username, password }).toString(),
      });
    }
    throw new Error("Cannot sign in at the IdP: too many forms");
  }

  async #kill(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.#child.kill("SIGTERM");
    } catch { /* already gone */ }
    await this.#child.status;
    await this.#stderr;
  }

  /** Ends the PHP process and removes the configuration directory. */
  async stop(): Promise<void> {
    await this.#kill();
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  /** Same as {@link stop}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Writes SP metadata documents as one EntitiesDescriptor (simplesamlphp's XML source reads one file). */
async function writeSpMetadata(file: string, docs: readonly string[]): Promise<void> {
  const body = docs.map((d) => d.replace(/^\s*<\?xml[^>]*\?>/, "")).join("\n");
  const tmp = `${file}.tmp`;
  await Deno.writeTextFile(
    tmp,
    `<?xml version="1.0"?>\n<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">\n${body}\n</EntitiesDescriptor>\n`,
  );
  await Deno.rename(tmp, file); // whole file or none, for a request reading it meanwhile
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<string> {
  let out = "";
  const dec = new TextDecoder();
  for await (const chunk of stream) out = (out + dec.decode(chunk, { stream: true })).slice(-8192);
  return out;
}

/** Just enough of a browser's cookie handling for one loopback host. */
class CookieJar {
  readonly #cookies = new Map<string, string>();

  /** fetch with our cookies, following redirects by hand so each hop's Set-Cookie is kept. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response & { url: string }> {
    let current = url;
    let req: RequestInit = init;
    for (let hop = 0; hop < 10; hop++) {
      const headers = new Headers(req.headers);
      if (this.#cookies.size) {
        headers.set("cookie", [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; "));
      }
      const res = await fetch(current, { ...req, headers, redirect: "manual" });
      for (const sc of res.headers.getSetCookie()) {
        const [pair] = sc.split(";");
        const eq = pair.indexOf("=");
        if (eq > 0) this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
      }
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        current = new URL(location, current).href;
        req = {};
        continue;
      }
      Object.defineProperty(res, "url", { value: current });
      return res as Response & { url: string };
    }
    throw new Error(`Cannot follow redirects from ${url}: too many`);
  }
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === "#") {
      const n = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(n);
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

function attrOf(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, "i").exec(tag);
  return m ? decodeEntities(m[1] ?? m[2]) : undefined;
}

/** The first form of a page: its absolute action URL and its named input values. */
function parseForm(
  html: string,
  pageUrl: string,
): { action: string; fields: Record<string, string> } | null {
  const start = html.search(/<form\b/i);
  if (start < 0) return null;
  const end = html.indexOf("</form>", start);
  const body = html.slice(start, end < 0 ? undefined : end);
  const formTag = body.slice(0, body.indexOf(">") + 1);
  const action = new URL(attrOf(formTag, "action") ?? "", pageUrl).href;
  const fields: Record<string, string> = {};
  for (const m of body.matchAll(/<input\b[^>]*>/gi)) {
    const name = attrOf(m[0], "name");
    const type = (attrOf(m[0], "type") ?? "text").toLowerCase();
    if (!name || type === "submit" || type === "checkbox") continue;
    fields[name] = attrOf(m[0], "value") ?? "";
  }
  return { action, fields };
}
