/**
 * What the sign-in flows and their users share: a signed-in user's groups
 * with their sources, the user behind a sign-in token (enrolment and the
 * device API check it too), and the loopback return address a connector's
 * console may be sent back to.
 */
import { InputError } from "../errors.ts";
import type { Store, UserRecord } from "../store/mod.ts";
import { sha256Hex } from "./secrets.ts";

/** A group of a signed-in user and where it came from. */
export interface SourcedGroup {
  name: string;
  source: "idp" | "local" | "machine";
}

/** The user a token stands for, as the connector and the consoles show it. */
export interface SignedInUser {
  id: string;
  username: string;
  email: string | null;
  provider: string | null;
  groups: SourcedGroup[];
}

/** Groups of a user with their sources: the IdP's (mapped at sign-in), then local ones. */
export function userGroups(u: UserRecord): SourcedGroup[] {
  const out: SourcedGroup[] = u.idpGroups.map((name) => ({ name, source: "idp" as const }));
  for (const g of u.groups) {
    if (!out.some((x) => x.name === g)) out.push({ name: g, source: "local" });
  }
  return out;
}

/**
 * The user behind a live sign-in token, or undefined (unknown, expired, or
 * the user disabled or gone). Shared by the sign-in service and enrolment.
 */
export function resolveSignIn(
  store: Store,
  now: number,
  token: string,
): { user: UserRecord; tokenHash: string; expiresAt: number } | undefined {
  if (!/^pcs_[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
  const hash = sha256Hex(token);
  const s = store.userSignIns.byHash(hash);
  if (!s || s.expiresAt <= now) return undefined;
  const u = store.users.byId(s.userId);
  if (!u || u.disabled) return undefined;
  return { user: u, tokenHash: hash, expiresAt: s.expiresAt };
}

/** Checks that `raw` is a URL on this host's loopback interface (where a connector's console listens). */
export function loopbackReturn(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new InputError(
      "invalid_return",
      `Return address ${JSON.stringify(raw.slice(0, 200))} is not a URL`,
    );
  }
  const host = u.hostname;
  if (
    u.protocol !== "http:" || !(host === "127.0.0.1" || host === "localhost" || host === "[::1]") ||
    u.username || u.password || u.hash || !u.port
  ) {
    throw new InputError(
      "invalid_return",
      `Return address "${
        u.href.slice(0, 200)
      }" must be http://127.0.0.1:PORT/… (the connector's loopback console)`,
    );
  }
  return u;
}
