/**
 * Reading an enrolment key on the connector: the string an admin pasted,
 * checked with messages that say what is wrong with it (cut when copied, the
 * wrong prefix, an http URL), and the edge's bootstrap URL it implies.
 */
import { EnrollmentKeyPayload, KEY_PREFIX } from "../control/enrollment_key.ts";
import { InputError } from "../errors.ts";
import { fromBase64 } from "./identity.ts";

/** Parses an enrolment key `pc1.<base64url(JSON)>`, naming what is wrong with a bad one. */
export function parseEnrollmentKey(text: string): EnrollmentKeyPayload {
  const key = text.trim();
  if (!key.startsWith(KEY_PREFIX)) {
    throw new InputError(
      "bad_enrollment_key",
      `Cannot parse enrolment key: expected it to start with "${KEY_PREFIX}", got "${
        key.slice(0, 8)
      }…"`,
    );
  }
  const body = key.slice(KEY_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(body)) {
    throw new InputError(
      "bad_enrollment_key",
      'Cannot parse enrolment key: the part after "pc1." is not base64url (was it cut or wrapped when copied?)',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64(body)));
  } catch {
    throw new InputError(
      "bad_enrollment_key",
      "Cannot parse enrolment key: its payload is not valid JSON (was it cut when copied?)",
    );
  }
  const r = EnrollmentKeyPayload.safeParse(json);
  if (!r.success) {
    const what = r.error.issues.map((i) => `${i.path.join(".") || "payload"}: ${i.message}`)
      .join("; ");
    throw new InputError("bad_enrollment_key", `Cannot use enrolment key: ${what}`);
  }
  const u = new URL(r.data.u);
  if (u.protocol !== "https:") {
    throw new InputError(
      "bad_enrollment_key",
      `Cannot use enrolment key: edge URL "${r.data.u}" must use https`,
    );
  }
  return r.data;
}

/** The plain-HTTP bootstrap base URL of a key (`b`, or http://<host of u>:8081). */
export function bootstrapBase(p: EnrollmentKeyPayload): string {
  if (p.b) return p.b.replace(/\/+$/, "");
  const u = new URL(p.u);
  return `http://${u.hostname}:8081`; // hostname keeps the brackets of an IPv6 literal
}
