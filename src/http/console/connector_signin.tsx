/**
 * The connector console's Sign in: for a connector whose key enrols only a
 * signed-in user's device, a card on the Private Access page asks for the
 * email address and then offers the edge's sign-in URL as a link (a form
 * may only post to this console, CSP form-action 'self', so the way out to
 * the edge is a link the user follows); the edge
 * (after the IdP) sends it back to `/signin/done` here with a grant, which
 * src/connector/browser_signin.ts redeems and enrols with.
 */
import type { Context, Hono } from "hono";
import type { Translate } from "../../../web/i18n/mod.ts";
import { Card, CsrfField, Flash } from "../../../web/components.tsx";
import { PortcullisError } from "../../errors.ts";
import { readForm } from "./common.ts";

/** What the routes need from the console around them. */
export interface SignInConsoleDeps {
  signIn: {
    start(email: string, returnTo: string): string;
    finish(grant: string, state: string): Promise<{ username: string }>;
    local(username: string, password: string, totp: string): Promise<{ username: string }>;
  };
  checkCsrf(c: Context, form: Record<string, string>): void;
  /** Renders the Private Access page with the sign-in card's error or continue link. */
  privatePage(
    c: Context,
    o: { error?: string; continueUrl?: string },
    status: number,
  ): Response | Promise<Response>;
}

/**
 * The Sign in card (shown while the edge wants a signed-in user). With
 * `renewFor`, the device is enrolled and that user's sign-in ended: the card
 * says so and offers their address.
 */
export function SignInCard(
  props: { t: Translate; csrf: string; error?: string; continueUrl?: string; renewFor?: string },
) {
  const { t } = props;
  if (props.continueUrl) {
    return (
      <Card title={t("signin.title")} id="signin-card">
        <p class="muted">{t("signin.continue_intro")}</p>
        <a href={props.continueUrl} class="btn btn-primary" id="signin-continue" hx-boost="false">
          {t("signin.continue")}
        </a>
      </Card>
    );
  }
  return (
    <Card title={t("signin.title")} id="signin-card">
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <p class="muted" id="signin-intro">
        {props.renewFor ? t("signin.intro_renew", { user: props.renewFor }) : t("signin.intro")}
      </p>
      <form method="post" action="/signin" class="form" id="signin-form" hx-boost="false">
        <CsrfField token={props.csrf} />
        <div class="form-row">
          <label for="signin-email">{t("signin.email")}</label>
          <input
            type="text"
            inputmode="email"
            id="signin-email"
            name="email"
            required
            maxlength={254}
            autocomplete="email"
            value={props.renewFor?.includes("@") ? props.renewFor : undefined}
          />
        </div>
        <div>
          <button type="submit" class="btn btn-primary" id="signin-submit">
            {t("signin.button")}
          </button>
        </div>
      </form>
      <details id="signin-local">
        <summary>{t("signin.local")}</summary>
        <form method="post" action="/signin/local" class="form" id="signin-local-form">
          <CsrfField token={props.csrf} />
          <div class="form-row">
            <label for="local-username">{t("signin.username")}</label>
            <input type="text" id="local-username" name="username" required maxlength={254} />
          </div>
          <div class="form-row">
            <label for="local-password">{t("signin.password")}</label>
            <input
              type="password"
              id="local-password"
              name="password"
              required
              maxlength={1024}
              autocomplete="current-password"
            />
          </div>
          <div class="form-row">
            <label for="local-totp">{t("signin.totp")}</label>
            <input
              type="text"
              id="local-totp"
              name="totp"
              required
              inputmode="numeric"
              maxlength={6}
              autocomplete="one-time-code"
            />
          </div>
          <div>
            <button type="submit" class="btn btn-secondary" id="signin-local-submit">
              {t("signin.button")}
            </button>
          </div>
        </form>
      </details>
    </Card>
  );
}

/** Installs POST /signin and GET /signin/done. */
export function installSignIn(app: Hono<any>, d: SignInConsoleDeps): void {
  const fail = (c: Context, e: unknown) => {
    const t = c.get("t") as Translate;
    const msg = e instanceof PortcullisError ? e.message : t("error.unexpected_connector");
    const status = e instanceof PortcullisError && e.status < 500 ? e.status : 502;
    return d.privatePage(c, { error: msg }, status);
  };
  app.post("/signin", async (c) => {
    const form = await readForm(c);
    try {
      d.checkCsrf(c, form);
      const email = (form.email ?? "").trim();
      const returnTo = `${new URL(c.req.url).origin}/signin/done`;
      return d.privatePage(c, { continueUrl: d.signIn.start(email, returnTo) }, 200);
    } catch (e) {
      return fail(c, e);
    }
  });
  app.post("/signin/local", async (c) => {
    const form = await readForm(c);
    try {
      d.checkCsrf(c, form);
      await d.signIn.local(
        (form.username ?? "").trim(),
        form.password ?? "",
        (form.totp ?? "").replace(/\s+/g, ""),
      );
      return c.redirect("/private-access", 303);
    } catch (e) {
      return fail(c, e);
    }
  });
  app.get("/signin/done", async (c) => {
    try {
      await d.signIn.finish(c.req.query("grant") ?? "", c.req.query("state") ?? "");
      return c.redirect("/private-access", 303);
    } catch (e) {
      return fail(c, e);
    }
  });
}
