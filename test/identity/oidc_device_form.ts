/**
 * Completes an OIDC device sign-in at the test IdP (test/identity/oidc_idp.ts)
 * the way a person does in a browser: the device page, the user code, the
 * confirmation, the login form — here with fetch and a cookie jar, so it can
 * run inside a lab namespace where no browser is:
 *
 *   deno run -A test/identity/oidc_device_form.ts URL CODE EMAIL PASSWORD
 *
 * Exits 0 once the IdP says the device is signed in.
 */

/** Fills and submits the IdP's forms until the device sign-in is done. */
export async function completeDeviceFlow(
  url: string,
  userCode: string,
  email: string,
  password: string,
): Promise<void> {
  const jar = new Map<string, string>();
  let current = url;
  let init: RequestInit = {};
  for (let hop = 0; hop < 30; hop++) {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await fetch(current, { ...init, headers, redirect: "manual" });
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(";");
      const eq = pair.indexOf("=");
      if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const loc = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && loc) {
      await res.body?.cancel();
      current = new URL(loc, current).href;
      init = {};
      continue;
    }
    const html = await res.text();
    if (/Sign-in Success|signed in successfully|device is now signed in/i.test(html)) return;
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
    if (!form) throw new Error(`No form and no success at ${current}: ${html.slice(0, 300)}`);
    const fields = new URLSearchParams();
    for (const m of form[2].matchAll(/<input([^>]*)>/g)) {
      const name = /name="([^"]+)"/.exec(m[1])?.[1];
      if (!name) continue;
      const value = /value="([^"]*)"/.exec(m[1])?.[1] ?? "";
      fields.set(
        name,
        name === "user_code" && !value
          ? userCode
          : name === "login"
          ? email
          : name === "password"
          ? password
          : value,
      );
    }
    current = new URL(form[1], current).href;
    init = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: fields,
    };
  }
  throw new Error("The device sign-in did not finish");
}

if (import.meta.main) {
  const [url, code, email, password] = Deno.args;
  await completeDeviceFlow(url, code, email, password);
  console.log("device signed in");
}
