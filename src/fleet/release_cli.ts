/**
 * `portcullis release keygen|sign|verify`: the operator's side of connector
 * releases (src/fleet/release.ts). keygen writes the private key to a new
 * mode-0600 file (kept by the operator, never copied to an edge) and the
 * public half beside it (`.pub`, what connectors pin at install); sign turns
 * a program and its version into a bundle the edge's admin API takes;
 * verify checks a bundle against a public key, as a connector will;
 * rollback signs the permission for connectors to go back from one version
 * to an older one (src/fleet/rollback_auth.ts), which a rollback rule needs.
 */
import { parseCliArgs } from "../cli_args.ts";
import { parseDuration } from "../duration.ts";
import { InputError } from "../errors.ts";
import {
  bundleBytes,
  generateReleaseKey,
  parseBundle,
  parsePrivateKeyFile,
  parsePublicKeyFile,
  privateKeyFileText,
  publicKeyFileText,
  signRelease,
  verifyManifest,
} from "./release.ts";
import { MAX_ROLLBACK_MS, rollbackFileText, signRollback } from "./rollback_auth.ts";

const USAGE = `Usage:
  portcullis release keygen --out FILE      new release key: FILE (private, mode 0600) and FILE.pub
  portcullis release sign --key FILE --version V --program PATH --out BUNDLE
  portcullis release verify --public-key FILE.pub BUNDLE
  portcullis release rollback --key FILE --from V[,V2…] --to OLDER [--expires 7d] --out FILE`;

async function readFileNamed(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new InputError(
      "file_unreadable",
      `Cannot read ${what} "${path}": ${(e as Error).message}`,
    );
  }
}

/** Writes a new file (never over an existing one). */
async function writeNew(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { write: true, createNew: true, mode });
  } catch (e) {
    throw new InputError(
      "file_exists",
      e instanceof Deno.errors.AlreadyExists
        ? `Cannot write "${path}": it exists already (nothing is overwritten)`
        : `Cannot write "${path}": ${(e as Error).message}`,
    );
  }
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } finally {
    f.close();
  }
}

function need(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || !v) {
    throw new InputError("usage", `Missing --${name} for "portcullis release".\n${USAGE}`);
  }
  return v;
}

/** Runs `portcullis release …`; returns the exit code. */
export async function releaseCommand(
  args: string[],
  out: (line: string) => void = console.log,
): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseCliArgs(rest, {
    out: { type: "string" },
    key: { type: "string" },
    version: { type: "string" },
    program: { type: "string" },
    "public-key": { type: "string" },
    from: { type: "string" },
    to: { type: "string" },
    expires: { type: "string" },
  }, `portcullis release ${sub ?? ""}`.trim());
  if (sub === "keygen") {
    const path = need(values, "out");
    const k = await generateReleaseKey();
    await writeNew(path, privateKeyFileText(k), 0o600);
    await Deno.chmod(path, 0o600);
    await writeNew(`${path}.pub`, publicKeyFileText(k.publicKey), 0o644);
    out(`Release key ${k.keyId}: private half in ${path} (mode 0600; keep it off the edges),`);
    out(`public half in ${path}.pub (pin it on connectors: --release-key ${path}.pub).`);
    return 0;
  }
  if (sub === "sign") {
    const keyPath = need(values, "key");
    const key = parsePrivateKeyFile(
      new TextDecoder().decode(await readFileNamed(keyPath, "release key")),
      keyPath,
    );
    const programPath = need(values, "program");
    const program = await readFileNamed(programPath, "program");
    const signed = await signRelease(key, need(values, "version"), program);
    const dest = need(values, "out");
    await writeNew(dest, bundleBytes(signed, program), 0o644);
    out(`Signed ${programPath} as release ${values.version} with key ${key.keyId}: ${dest}`);
    return 0;
  }
  if (sub === "verify") {
    const pubPath = need(values, "public-key");
    const pub = parsePublicKeyFile(
      new TextDecoder().decode(await readFileNamed(pubPath, "release public key")),
      pubPath,
    );
    if (positionals.length !== 1) throw new InputError("usage", `Give one bundle.\n${USAGE}`);
    const b = parseBundle(await readFileNamed(positionals[0], "release bundle"));
    if (!(await verifyManifest(b.signed, pub))) {
      out(
        `Bad signature: ${
          positionals[0]
        } (release ${b.manifest.version}) is not signed by ${pubPath}`,
      );
      return 1;
    }
    out(
      `Good signature: release ${b.manifest.version}, SHA-256 ${b.manifest.sha256}, key ${b.manifest.keyId}`,
    );
    return 0;
  }
  if (sub === "rollback") {
    const keyPath = need(values, "key");
    const key = parsePrivateKeyFile(
      new TextDecoder().decode(await readFileNamed(keyPath, "release key")),
      keyPath,
    );
    const from = need(values, "from").split(",").map((v) => v.trim()).filter(Boolean);
    const to = need(values, "to");
    const expires = typeof values.expires === "string" ? values.expires : "7d";
    let validMs: number | null = null;
    try {
      validMs = parseDuration(expires);
    } catch { /* refused below, naming the flag */ }
    if (validMs === null || validMs > MAX_ROLLBACK_MS) {
      throw new InputError(
        "invalid_duration",
        `Invalid --expires "${expires}": expected a number followed by s, m, h or d (e.g. 7d), at most 366d`,
      );
    }
    const signed = await signRollback(key, from, to, validMs);
    const dest = need(values, "out");
    await writeNew(dest, rollbackFileText(signed), 0o644);
    const auth = JSON.parse(signed.authorisation);
    out(
      `Signed a rollback from ${
        auth.from.join(", ")
      } to ${to} with key ${key.keyId}, valid until ${auth.expiresAt}: ${dest}`,
    );
    return 0;
  }
  throw new InputError("usage", `Unknown release command ${JSON.stringify(sub ?? "")}.\n${USAGE}`);
}
