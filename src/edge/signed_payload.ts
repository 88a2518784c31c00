/**
 * Opening a payload a connector signed with its device key (DLP incidents,
 * posture reports): the signature is checked over the exact text before
 * anything in it is parsed, then the JSON is validated and must name the
 * sending device. One piece of code, so every signed report refuses forged,
 * garbled and borrowed payloads the same way, with the same 4xx codes.
 */
import type { z } from "zod";
import { InputError } from "../errors.ts";
import { logger } from "../log.ts";
import type { DeviceRecord } from "../store/mod.ts";
import { verifyEd25519 } from "./devices.ts";

const log = logger("edge.signed");

/** How one kind of signed report names itself in errors. */
export interface SignedKind {
  /** In sentences: "DLP incident", "posture report". */
  noun: string;
  /** Error code of a signature that does not verify. */
  signatureCode: string;
  /** Error code of a payload naming another device (403). */
  mismatchCode: string;
}

/** Verifies, parses and checks a signed payload; throws InputError (4xx) otherwise. */
export function openSignedPayload<T extends { deviceId: string }>(
  device: DeviceRecord,
  payload: string,
  signature: string,
  message: Uint8Array,
  schema: z.ZodType<T>,
  kind: SignedKind,
): T {
  if (!verifyEd25519(device.signingPublicKey, message, signature)) {
    log.warn(`Refused a ${kind.noun} with a bad signature`, { device: device.id });
    throw new InputError(
      kind.signatureCode,
      `Cannot accept the ${kind.noun} of device "${device.hostname}": its signature does not verify with the device's signing key`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    throw new InputError("invalid_request", "Invalid request: payload: not valid JSON");
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new InputError(
      "invalid_request",
      `Invalid request: payload.${i.path.join(".")}: ${i.message}`,
    );
  }
  if (r.data.deviceId !== device.id) {
    throw new InputError(
      kind.mismatchCode,
      `Cannot accept a ${kind.noun} for device "${
        r.data.deviceId.slice(0, 64)
      }" from device "${device.id}"`,
      403,
    );
  }
  return r.data;
}
