import assert from "node:assert/strict";
import {
  fingerprintHash,
  fromBase64,
  generateDeviceKeys,
  loadOrCreateIdentity,
  readFingerprint,
  sealSecrets,
  unsealSecrets,
  wgPublicKeyFromPrivate,
} from "../../src/connector/identity.ts";
import { ConnectorState } from "../../src/store/connector_state.ts";

/** A fake /etc/machine-id and /sys/class/net tree in a temp dir. */
async function fakeMachine(machineId: string, ifaces: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: "pc-ident-" });
  await Deno.writeTextFile(`${dir}/machine-id`, machineId + "\n");
  await Deno.mkdir(`${dir}/net`);
  for (const [name, mac] of Object.entries(ifaces)) {
    await Deno.mkdir(`${dir}/net/${name}`);
    await Deno.writeTextFile(`${dir}/net/${name}/address`, mac + "\n");
    // Hardware-backed interfaces have a "device" link in sysfs; virtual ones do not.
    if (!/^(veth|docker|br-)/.test(name)) await Deno.mkdir(`${dir}/net/${name}/device`);
  }
  return {
    dir,
    src: {
      machineIdPath: `${dir}/machine-id`,
      sysNetPath: `${dir}/net`,
      excludeInterfaces: ["pc0"],
    },
  };
}

Deno.test("readFingerprint sorts and lowercases MACs, drops lo, zero MACs, virtual interfaces and the tunnel", async () => {
  const m = await fakeMachine("abc123", {
    lo: "00:00:00:00:00:00",
    eth1: "AA:BB:CC:00:00:02",
    eth0: "aa:bb:cc:00:00:01",
    dummy: "00:00:00:00:00:00",
    pc0: "11:22:33:44:55:66",
    weird: "not-a-mac",
    veth1a2b: "aa:bb:cc:00:00:09",
    docker0: "02:42:ac:11:00:01",
  });
  try {
    const fp = await readFingerprint(m.src);
    assert.deepEqual(fp, { machineId: "abc123", macs: ["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"] });
    const h = await fingerprintHash(fp);
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.equal(h, await fingerprintHash({ machineId: "abc123", macs: [...fp.macs].reverse() }));
    assert.notEqual(h, await fingerprintHash({ machineId: "abc124", macs: fp.macs }));
  } finally {
    await Deno.remove(m.dir, { recursive: true });
  }
});

Deno.test("readFingerprint names the path of a missing machine-id", async () => {
  await assert.rejects(
    () => readFingerprint({ machineIdPath: "/nonexistent/machine-id" }),
    /Cannot read machine id from "\/nonexistent\/machine-id"/,
  );
});

Deno.test("generated WireGuard keys are clamped and match `wg pubkey`", async () => {
  const k = await generateDeviceKeys();
  const priv = fromBase64(k.secrets.wgPrivateKey);
  assert.equal(priv.length, 32);
  assert.equal(priv[0] & 7, 0);
  assert.equal(priv[31] & 0x80, 0);
  assert.equal(priv[31] & 0x40, 0x40);
  assert.match(k.wgPublicKey, /^[A-Za-z0-9+/]{43}=$/);
  assert.match(k.signingPublicKey, /^[A-Za-z0-9+/]{43}=$/);
  const child = new Deno.Command("wg", { args: ["pubkey"], stdin: "piped", stdout: "piped" })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(k.secrets.wgPrivateKey + "\n"));
  await w.close();
  const out = await child.output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), k.wgPublicKey);
  // And our derivation agrees with wg for a key wg made.
  const gen = await new Deno.Command("wg", { args: ["genkey"], stdout: "piped" }).output();
  const wgPriv = new TextDecoder().decode(gen.stdout).trim();
  const p2 = new Deno.Command("wg", { args: ["pubkey"], stdin: "piped", stdout: "piped" }).spawn();
  const w2 = p2.stdin.getWriter();
  await w2.write(new TextEncoder().encode(wgPriv + "\n"));
  await w2.close();
  const wgPub = new TextDecoder().decode((await p2.output()).stdout).trim();
  assert.equal(await wgPublicKeyFromPrivate(wgPriv), wgPub);
});

Deno.test("sealed secrets open only with the same machine-id and fingerprint hash", async () => {
  const k = await generateDeviceKeys();
  const secrets = { ...k.secrets, credential: "cred-123" };
  const row = await sealSecrets("machine-a", "f".repeat(64), secrets, {
    wgPublicKey: k.wgPublicKey,
    signingPublicKey: k.signingPublicKey,
    createdAt: 1,
  });
  assert.ok(!row.ciphertext.includes(k.secrets.wgPrivateKey));
  assert.deepEqual(await unsealSecrets("machine-a", row), secrets);
  await assert.rejects(
    () => unsealSecrets("machine-b", row),
    /Cannot unseal the stored device keys/,
  );
  await assert.rejects(
    () => unsealSecrets("machine-a", { ...row, fingerprintHash: "e".repeat(64) }),
    /Cannot unseal/,
  );
});

Deno.test("identity: same machine reuses keys, another machine discards them", async () => {
  const a = await fakeMachine("machine-a", { eth0: "02:00:00:00:00:01" });
  const b = await fakeMachine("machine-b", { eth0: "02:00:00:00:00:01" });
  const dbPath = `${a.dir}/state.db`;
  try {
    let store = ConnectorState.open(dbPath);
    const first = await loadOrCreateIdentity(store, a.src);
    assert.equal(first.status, "created");
    first.identity.setCredential("secret-credential");
    store.putIdentity(await first.identity.seal());
    store.close();

    store = ConnectorState.open(dbPath);
    const again = await loadOrCreateIdentity(store, a.src);
    assert.equal(again.status, "loaded");
    assert.equal(again.identity.wgPublicKey, first.identity.wgPublicKey);
    assert.equal(again.identity.wgPrivateKey, first.identity.wgPrivateKey);
    assert.equal(again.identity.credential, "secret-credential");
    // Signatures verify against the stored public key.
    const sig = await again.identity.sign(new TextEncoder().encode("hello"));
    const pub = await crypto.subtle.importKey(
      "raw",
      fromBase64(again.identity.signingPublicKey) as BufferSource,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    assert.ok(
      await crypto.subtle.verify(
        "Ed25519",
        pub,
        sig as BufferSource,
        new TextEncoder().encode("hello"),
      ),
    );
    store.close();

    // The same data directory on machine b (a copied disk image).
    store = ConnectorState.open(dbPath);
    store.putEnrollment(
      {
        deviceId: "d1",
        apiUrl: "https://edge:8443",
        caPem: "pem",
        address: "100.64.0.2",
        network: "100.64.0.0/16",
        edgeAddress: "100.64.0.1",
        edgePublicKey: first.identity.wgPublicKey,
        endpoints: [{ transport: "udp", host: "127.0.0.1", port: 51820 }],
        user: null,
        group: null,
        enrolledAt: 1,
      },
      await again.identity.seal(),
    );
    const moved = await loadOrCreateIdentity(store, b.src);
    assert.equal(moved.status, "replaced");
    assert.match((moved as { reason: string }).reason, /hardware fingerprint changed/);
    assert.notEqual(moved.identity.wgPublicKey, first.identity.wgPublicKey);
    assert.equal(moved.identity.credential, null);
    assert.equal(store.getEnrollment(), null, "the enrolment bound to the old keys is gone");
    store.close();
  } finally {
    await Deno.remove(a.dir, { recursive: true });
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("identity: a forged fingerprint hash still cannot be unsealed with another machine-id", async () => {
  const a = await fakeMachine("machine-a", {});
  const b = await fakeMachine("machine-b", {});
  try {
    const store = ConnectorState.open(":memory:");
    const first = await loadOrCreateIdentity(store, a.src);
    // An attacker rewrites the stored hash to machine b's fingerprint.
    const bHash = await fingerprintHash(await readFingerprint(b.src));
    store.putIdentity({ ...store.getIdentity()!, fingerprintHash: bHash });
    const out = await loadOrCreateIdentity(store, b.src);
    assert.equal(out.status, "replaced");
    assert.match((out as { reason: string }).reason, /Cannot unseal/);
    assert.notEqual(out.identity.wgPrivateKey, first.identity.wgPrivateKey);
    store.close();
  } finally {
    await Deno.remove(a.dir, { recursive: true });
    await Deno.remove(b.dir, { recursive: true });
  }
});
