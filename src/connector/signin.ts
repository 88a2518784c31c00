/**
 * Signing the user in from a headless box (`portcullis connect --email`):
 * the OIDC device authorization grant, run by the edge. The connector asks
 * the edge to start it, tells the person where to go and which code to
 * enter, polls the edge at the IdP's interval until the person is done,
 * and redeems the one-time grant for the sign-in token it enrols with.
 */
import { InputError } from "../errors.ts";
import type { EdgeApi } from "./edge_api.ts";

/** What the device sign-in needs besides the edge client. */
export interface DeviceSignInDeps {
  /** Shows the person what to do (the CLI prints it). */
  tell: (message: string) => void;
  /** Waits `ms` (injected so tests need not wait the IdP's interval). */
  sleep?: (ms: number) => Promise<void>;
  signal?: AbortSignal;
}

/** Signs `email` in with the device flow; returns the sign-in token and the user's name. */
export async function deviceSignIn(
  client: EdgeApi,
  email: string,
  d: DeviceSignInDeps,
): Promise<{ token: string; username: string; expiresAt: string }> {
  if (!client.startDeviceSignIn || !client.pollDeviceSignIn || !client.redeemSignIn) {
    throw new InputError("signin_unsupported", "This edge does not offer sign-in");
  }
  const sleep = d.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const start = await client.startDeviceSignIn(email);
  d.tell(
    `To sign in as ${email}, open ${start.verificationUri} and enter the code ${start.userCode}` +
      (start.verificationUriComplete ? ` (or open ${start.verificationUriComplete})` : ""),
  );
  const deadline = Date.now() + start.expiresIn * 1000;
  for (;;) {
    d.signal?.throwIfAborted();
    const p = await client.pollDeviceSignIn(start.handle);
    if (p.status === "done") {
      const r = await client.redeemSignIn(p.grant);
      d.tell(`Signed in as ${r.user.username}`);
      return { token: r.token, username: r.user.username, expiresAt: r.expiresAt };
    }
    if (Date.now() > deadline) {
      throw new InputError(
        "signin_expired",
        `The sign-in code ${start.userCode} expired before it was entered; run the command again`,
      );
    }
    await sleep(Math.max(1, Math.min(start.interval, 5)) * 1000);
  }
}
