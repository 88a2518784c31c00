/**
 * Per-device identity that a cloned disk image cannot share.
 *
 * The hardware fingerprint is the machine-id plus the MAC addresses of the
 * non-loopback interfaces (not our own tunnel interface, which we create).
 * The device keys (a WireGuard X25519 key pair and an Ed25519 signing key
 * pair) and the device credential are sealed at rest with AES-256-GCM under a
 * key derived by HKDF-SHA256 from the machine-id and a random salt; the
 * fingerprint hash is the AES-GCM associated data. A data directory copied to
 * another machine therefore cannot be unsealed there: on start we compare the
 * stored fingerprint, discard the identity, say why, and enrol afresh with
 * new keys — never impersonating the original device.
 */
import { PortcullisError } from "../errors.ts";
import type { HardwareFingerprint } from "../identity/secrets.ts";
import type { ConnectorState, SealedIdentityRow } from "../store/connector_state.ts";

/** Where the fingerprint comes from; paths are injectable for tests and namespaces. */
export interface FingerprintSource {
  /** Default "/etc/machine-id". */
  machineIdPath?: string;
  /** Default "/sys/class/net". */
  sysNetPath?: string;
  /** Interfaces to leave out besides loopback (our tunnel interface). */
  excludeInterfaces?: string[];
}

/** Raised when the identity cannot be read, made or unsealed. */
export class IdentityError extends PortcullisError {
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(code, message, 500, options);
  }
}

const HKDF_INFO = new TextEncoder().encode("portcullis connector device keys v1");
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export { fromBase64, toBase64, toBase64Url } from "../base64.ts";
import { fromBase64, toBase64, toBase64Url } from "../base64.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of `data` as lowercase hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource)));
}

/** Reads the hardware fingerprint of this machine. */
export async function readFingerprint(src: FingerprintSource = {}): Promise<HardwareFingerprint> {
  const idPath = src.machineIdPath ?? "/etc/machine-id";
  let machineId: string;
  try {
    machineId = (await Deno.readTextFile(idPath)).trim();
  } catch (err) {
    throw new IdentityError(
      "machine_id_unreadable",
      `Cannot read machine id from "${idPath}": ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!machineId || machineId.length > 128) {
    throw new IdentityError(
      "machine_id_invalid",
      `Cannot use machine id from "${idPath}": expected 1-128 characters, got ${machineId.length}`,
    );
  }
  const netPath = src.sysNetPath ?? "/sys/class/net";
  const exclude = new Set(["lo", ...(src.excludeInterfaces ?? [])]);
  const macs = new Set<string>();
  try {
    for await (const entry of Deno.readDir(netPath)) {
      if (exclude.has(entry.name)) continue;
      // Only hardware-backed interfaces (they have a "device" link): veth,
      // bridges, docker and VPN interfaces come and go, and must not change
      // who this machine is.
      try {
        await Deno.stat(`${netPath}/${entry.name}/device`);
      } catch {
        continue;
      }
      let mac: string;
      try {
        mac = (await Deno.readTextFile(`${netPath}/${entry.name}/address`)).trim().toLowerCase();
      } catch {
        continue; // interface vanished or has no address file
      }
      if (!MAC_RE.test(mac) || mac === "00:00:00:00:00:00") continue;
      macs.add(mac);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return { machineId, macs: [...macs].sort().slice(0, 64) };
}

/**
 * The fingerprint hash sent as X-Device-Fingerprint: SHA-256 hex of the
 * canonical JSON `{"machineId":…,"macs":[sorted, lowercase]}`.
 */
export function fingerprintHash(fp: HardwareFingerprint): Promise<string> {
  const macs = fp.macs.map((m) => m.toLowerCase()).sort();
  return sha256Hex(JSON.stringify({ machineId: fp.machineId, macs }));
}

/** Applies X25519 clamping to a 32-byte private key in place, as `wg genkey` does. */
export function clampPrivateKey(k: Uint8Array): Uint8Array {
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
  return k;
}

const X25519_PKCS8_PREFIX = new Uint8Array([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x6e,
  0x04,
  0x22,
  0x04,
  0x20,
]);

/** Derives the base64 WireGuard public key of a base64 private key. */
export async function wgPublicKeyFromPrivate(privateKeyB64: string): Promise<string> {
  const raw = fromBase64(privateKeyB64);
  if (raw.length !== 32) {
    throw new IdentityError(
      "bad_private_key",
      `Cannot derive public key: private key is ${raw.length} bytes, expected 32`,
    );
  }
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(X25519_PKCS8_PREFIX);
  pkcs8.set(raw, 16);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, true, [
    "deriveBits",
  ]);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  return toBase64(fromBase64(jwk.x!));
}

/** Secret material of a device; only ever held in memory or sealed. */
export interface DeviceSecrets {
  /** Base64 32-byte clamped X25519 private key. */
  wgPrivateKey: string;
  /** Base64 32-byte Ed25519 seed. */
  signingPrivateKey: string;
  /** Device credential from the edge, once enrolled. */
  credential: string | null;
}

/** Makes fresh device keys with WebCrypto. */
export async function generateDeviceKeys(): Promise<
  { secrets: DeviceSecrets; wgPublicKey: string; signingPublicKey: string }
> {
  const wg = await crypto.subtle.generateKey({ name: "X25519" }, true, [
    "deriveBits",
  ]) as CryptoKeyPair;
  const wgJwk = await crypto.subtle.exportKey("jwk", wg.privateKey);
  const wgPriv = clampPrivateKey(fromBase64(wgJwk.d!));
  // Clamping does not change the public key (X25519 clamps before use), but
  // derive it from the stored bytes anyway so the pair is consistent by construction.
  const wgPublicKey = await wgPublicKeyFromPrivate(toBase64(wgPriv));
  const sig = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const sigJwk = await crypto.subtle.exportKey("jwk", sig.privateKey);
  return {
    secrets: {
      wgPrivateKey: toBase64(wgPriv),
      signingPrivateKey: toBase64(fromBase64(sigJwk.d!)),
      credential: null,
    },
    wgPublicKey,
    signingPublicKey: toBase64(fromBase64(sigJwk.x!)),
  };
}

async function deriveSealKey(machineId: string, salt: Uint8Array): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(machineId),
    "HKDF",
    false,
    ["deriveKey"],
  );
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: salt as BufferSource, info: HKDF_INFO },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** Seals secrets to this machine-id and fingerprint hash (fresh salt and nonce each time). */
export async function sealSecrets(
  machineId: string,
  fpHash: string,
  secrets: DeviceSecrets,
  publics: { wgPublicKey: string; signingPublicKey: string; createdAt: number },
): Promise<SealedIdentityRow> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await deriveSealKey(machineId, salt);
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(fpHash) },
    key,
    new TextEncoder().encode(JSON.stringify(secrets)),
  );
  return {
    fingerprintHash: fpHash,
    salt: toBase64(salt),
    iv: toBase64(iv),
    ciphertext: toBase64(new Uint8Array(ct)),
    ...publics,
  };
}

/** Opens a sealed row with this machine's id; throws IdentityError when it cannot. */
export async function unsealSecrets(
  machineId: string,
  row: SealedIdentityRow,
): Promise<DeviceSecrets> {
  let plain: ArrayBuffer;
  try {
    const key = await deriveSealKey(machineId, fromBase64(row.salt));
    plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: fromBase64(row.iv) as BufferSource,
        additionalData: new TextEncoder().encode(row.fingerprintHash),
      },
      key,
      fromBase64(row.ciphertext) as BufferSource,
    );
  } catch (err) {
    throw new IdentityError(
      "identity_unsealable",
      "Cannot unseal the stored device keys: they were sealed on another machine or the data is corrupt",
      { cause: err },
    );
  }
  const s = JSON.parse(new TextDecoder().decode(plain)) as DeviceSecrets;
  if (typeof s.wgPrivateKey !== "string" || typeof s.signingPrivateKey !== "string") {
    throw new IdentityError(
      "identity_corrupt",
      "Cannot use the stored device keys: fields missing",
    );
  }
  return { ...s, credential: s.credential ?? null };
}

/** This device's identity: fingerprint, keys and (once enrolled) credential. */
export class DeviceIdentity {
  readonly fingerprint: HardwareFingerprint;
  readonly fingerprintHash: string;
  readonly wgPublicKey: string;
  readonly signingPublicKey: string;
  readonly createdAt: number;
  #secrets: DeviceSecrets;

  constructor(
    fingerprint: HardwareFingerprint,
    fpHash: string,
    secrets: DeviceSecrets,
    publics: { wgPublicKey: string; signingPublicKey: string; createdAt: number },
  ) {
    this.fingerprint = fingerprint;
    this.fingerprintHash = fpHash;
    this.#secrets = { ...secrets };
    this.wgPublicKey = publics.wgPublicKey;
    this.signingPublicKey = publics.signingPublicKey;
    this.createdAt = publics.createdAt;
  }

  /** The base64 WireGuard private key (for the tunnel port only; never log it). */
  get wgPrivateKey(): string {
    return this.#secrets.wgPrivateKey;
  }

  /** The device credential, or null before enrolment. */
  get credential(): string | null {
    return this.#secrets.credential;
  }

  /** Sets (or clears) the credential in memory; persist with `seal()`. */
  setCredential(credential: string | null): void {
    this.#secrets.credential = credential;
  }

  /** Signs `data` with the device's Ed25519 key. */
  async sign(data: Uint8Array): Promise<Uint8Array> {
    const key = await crypto.subtle.importKey(
      "jwk",
      {
        kty: "OKP",
        crv: "Ed25519",
        d: toBase64Url(fromBase64(this.#secrets.signingPrivateKey)),
        x: toBase64Url(fromBase64(this.signingPublicKey)),
      },
      { name: "Ed25519" },
      false,
      ["sign"],
    );
    return new Uint8Array(await crypto.subtle.sign("Ed25519", key, data as BufferSource));
  }

  /** Seals the current secrets for storage on this machine. */
  seal(): Promise<SealedIdentityRow> {
    return sealSecrets(this.fingerprint.machineId, this.fingerprintHash, this.#secrets, this);
  }
}

/** How loadOrCreateIdentity ended. */
export type IdentityOutcome =
  | { status: "created"; identity: DeviceIdentity }
  | { status: "loaded"; identity: DeviceIdentity }
  | { status: "replaced"; identity: DeviceIdentity; reason: string };

/**
 * Loads the identity sealed in `store` if it belongs to this machine, or makes
 * a new one. When the stored identity was made on other hardware (or cannot
 * be unsealed) it is discarded together with its enrolment, and the outcome
 * says why so the caller can log and notify it.
 */
export async function loadOrCreateIdentity(
  store: ConnectorState,
  src: FingerprintSource = {},
  now: () => number = Date.now,
): Promise<IdentityOutcome> {
  const fingerprint = await readFingerprint(src);
  const fpHash = await fingerprintHash(fingerprint);
  const row = store.getIdentity();
  let reason: string | null = null;
  if (row) {
    if (row.fingerprintHash !== fpHash) {
      reason = `hardware fingerprint changed (stored ${
        row.fingerprintHash.slice(0, 12)
      }…, this machine ${
        fpHash.slice(0, 12)
      }…): the data directory was copied or the hardware changed`;
    } else {
      try {
        const secrets = await unsealSecrets(fingerprint.machineId, row);
        return {
          status: "loaded",
          identity: new DeviceIdentity(fingerprint, fpHash, secrets, row),
        };
      } catch (err) {
        reason = (err as Error).message;
      }
    }
    store.discardIdentity();
  }
  const made = await generateDeviceKeys();
  const identity = new DeviceIdentity(fingerprint, fpHash, made.secrets, {
    wgPublicKey: made.wgPublicKey,
    signingPublicKey: made.signingPublicKey,
    createdAt: now(),
  });
  store.putIdentity(await identity.seal());
  return reason === null
    ? { status: "created", identity }
    : { status: "replaced", identity, reason };
}
