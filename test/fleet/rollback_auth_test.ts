/**
 * Rollback authorisations: what a connector accepts as permission to go
 * back (table: the right one, another key, another from, another to,
 * expired, tampered, a manifest's signature replayed as one and the
 * reverse, missing, malformed), and `portcullis release rollback` on real
 * files.
 */
import assert from "node:assert/strict";
import {
  generateReleaseKey,
  type SignedManifest,
  signRelease,
  verifyManifest,
} from "../../src/fleet/release.ts";
import {
  parseRollback,
  rollbackRefusal,
  type SignedRollback,
  signRollback,
  verifyRollbackSignature,
} from "../../src/fleet/rollback_auth.ts";
import { releaseCommand } from "../../src/fleet/release_cli.ts";
import { InputError } from "../../src/errors.ts";

const T0 = Date.parse("2026-12-01T10:00:00Z");
const HOUR = 3600_000;

Deno.test("rollback authorisation: verification (table)", async () => {
  const k = await generateReleaseKey();
  const stranger = await generateReleaseKey();
  const good = await signRollback(k, ["0.3.0", "0.2.0"], "0.1.0", HOUR, () => T0);
  const text = (s: SignedRollback | SignedManifest | object) => JSON.stringify(s);
  const check = { publicKey: k.publicKey, running: "0.2.0", offered: "0.1.0", now: T0 + 1000 };
  // A manifest the release key really signed, its text and signature put in an authorisation.
  const manifest = await signRelease(k, "0.1.0", new Uint8Array([1, 2, 3]), () => T0);
  // An authorisation's text signed as if it were a manifest (the manifests' domain).
  const asManifest: SignedManifest = {
    format: "portcullis-release-1",
    manifest: good.authorisation,
    signature: good.signature,
  };
  const table: [what: string, auth: string | undefined, c: typeof check, want: RegExp | null][] = [
    ["the right one", text(good), check, null],
    ["the other from version", text(good), { ...check, running: "0.3.0" }, null],
    ["none", undefined, check, /no rollback authorisation/],
    ["not JSON", "{nope", check, /Invalid rollback authorisation: not JSON/],
    [
      "another key",
      text(await signRollback(stranger, ["0.2.0"], "0.1.0", HOUR, () => T0)),
      check,
      /bad signature/,
    ],
    [
      "verified with another pinned key",
      text(good),
      { ...check, publicKey: stranger.publicKey },
      /bad signature/,
    ],
    [
      "wrong from",
      text(good),
      { ...check, running: "0.2.5" },
      /allows leaving 0\.3\.0, 0\.2\.0, not 0\.2\.5/,
    ],
    ["wrong to", text(good), { ...check, offered: "0.0.9" }, /is for version 0\.1\.0, not 0\.0\.9/],
    ["expired", text(good), { ...check, now: T0 + HOUR }, /expired at 2026-12-01T11:00:00\.000Z/],
    [
      "authorisation text changed (to 0.0.1)",
      text({ ...good, authorisation: good.authorisation.replace('"to":"0.1.0"', '"to":"0.0.1"') }),
      { ...check, offered: "0.0.1" },
      /bad signature/,
    ],
    [
      "a manifest's signature replayed as an authorisation",
      text({
        format: "portcullis-rollback-1",
        authorisation: manifest.manifest,
        signature: manifest.signature,
      }),
      check,
      /Invalid rollback authorisation/,
    ],
  ];
  for (const [what, auth, c, want] of table) {
    const why = await rollbackRefusal(auth, c);
    if (want === null) assert.equal(why, null, what);
    else assert.match(why ?? "(accepted)", want, what);
  }
  // Domain separation, below the parsing: the manifest's signature over its text does not verify
  // as a rollback signature, nor an authorisation's as a manifest's, though the key is the same.
  assert.equal(
    await verifyRollbackSignature(
      {
        format: "portcullis-rollback-1",
        authorisation: manifest.manifest,
        signature: manifest.signature,
      },
      k.publicKey,
    ),
    false,
  );
  assert.equal(await verifyManifest(manifest, k.publicKey), true);
  assert.equal(await verifyManifest(asManifest, k.publicKey), false);
  assert.equal(await verifyRollbackSignature(good, k.publicKey), true);
});

Deno.test("rollback authorisation: what cannot be signed or parsed", async () => {
  const k = await generateReleaseKey();
  await assert.rejects(
    () => signRollback(k, ["0.1.0"], "0.2.0", HOUR),
    /0\.1\.0 is not newer than 0\.2\.0/,
  );
  await assert.rejects(() => signRollback(k, ["x"], "0.1.0", HOUR), /Invalid version "x"/);
  await assert.rejects(() => signRollback(k, ["0.2.0"], "0.1.0", 0), /validity/);
  const good = await signRollback(k, ["0.2.0"], "0.1.0", HOUR);
  assert.equal(parseRollback(JSON.stringify(good)).authorisation.to, "0.1.0");
  for (
    const bad of [
      "",
      JSON.stringify({ ...good, format: "portcullis-release-1" }),
      JSON.stringify({ ...good, authorisation: '{"product":"portcullis-connector"}' }),
      JSON.stringify({ ...good, extra: 1 }),
    ]
  ) {
    assert.throws(
      () => parseRollback(bad),
      (e) => e instanceof InputError && e.code === "invalid_rollback_authorisation",
      bad.slice(0, 60),
    );
  }
});

Deno.test("release rollback: the CLI writes an authorisation a connector accepts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pcrollback" });
  try {
    const lines: string[] = [];
    const out = (l: string) => lines.push(l);
    assert.equal(await releaseCommand(["keygen", "--out", `${dir}/release.key`], out), 0);
    const key = JSON.parse(await Deno.readTextFile(`${dir}/release.key.pub`)).publicKey;
    const before = Date.now();
    assert.equal(
      await releaseCommand([
        "rollback",
        "--key",
        `${dir}/release.key`,
        "--from",
        "0.3.0,0.2.0",
        "--to",
        "0.1.0",
        "--expires",
        "2h",
        "--out",
        `${dir}/back.json`,
      ], out),
      0,
    );
    assert.match(lines.at(-1)!, /Signed a rollback from 0\.3\.0, 0\.2\.0 to 0\.1\.0 with key/);
    const text = await Deno.readTextFile(`${dir}/back.json`);
    const a = parseRollback(text).authorisation;
    assert.deepEqual(a.from, ["0.3.0", "0.2.0"]);
    const exp = Date.parse(a.expiresAt) - before;
    assert.ok(exp >= 2 * HOUR - 5000 && exp <= 2 * HOUR + 5000, String(exp));
    const c = { publicKey: key, running: "0.2.0", offered: "0.1.0", now: Date.now() };
    assert.equal(await rollbackRefusal(text, c), null);
    // Default validity: 7 days.
    await releaseCommand([
      "rollback",
      "--key",
      `${dir}/release.key`,
      "--from",
      "0.2.0",
      "--to",
      "0.1.0",
      "--out",
      `${dir}/week.json`,
    ], out);
    const w = parseRollback(await Deno.readTextFile(`${dir}/week.json`)).authorisation;
    assert.ok(Date.parse(w.expiresAt) - Date.parse(w.createdAt) === 7 * 24 * HOUR);
    // Bad input names the bad value; nothing is overwritten.
    const bad: [string[], RegExp][] = [
      [["--expires", "soon"], /"soon"/],
      [["--expires", "400d"], /Invalid --expires "400d"/],
      [["--to", "0.5.0"], /"0\.2\.0" to "0\.5\.0"/],
      [["--out", `${dir}/back.json`], /exists already/],
    ];
    for (const [over, want] of bad) {
      const args: Record<string, string> = {
        "--key": `${dir}/release.key`,
        "--from": "0.2.0",
        "--to": "0.1.0",
        "--out": `${dir}/new-${lines.length}.json`,
      };
      for (let i = 0; i < over.length; i += 2) args[over[i]] = over[i + 1];
      await assert.rejects(
        () => releaseCommand(["rollback", ...Object.entries(args).flat()], out),
        want,
        over.join(" "),
      );
    }
    await assert.rejects(
      () => releaseCommand(["rollback", "--key", `${dir}/release.key`, "--to", "0.1.0"], out),
      /Missing --from/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
