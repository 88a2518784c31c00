/**
 * The UAPI socket's life (src/dataplane/uapi.ts): a stale socket is replaced,
 * a live one is never taken over, `set` is refused with wireguard-go's
 * negative errno. `wg show` against real roles is test/e2e/wg_show_test.ts.
 */
import assert from "node:assert/strict";
import {
  claimUapiPath,
  serveManagedUapi,
  serveUapi,
  type UapiInfo,
} from "../../src/dataplane/uapi.ts";
import { generatePrivateKey, WireGuardDevice } from "../../src/wireguard/mod.ts";
import { systemClock } from "../../src/clock.ts";
import { setLogSinks } from "../../src/log.ts";

setLogSinks([]);

function device() {
  const privateKey = generatePrivateKey();
  const info = (): UapiInfo => ({ privateKey, listenPort: 51820 });
  return { dev: new WireGuardDevice({ privateKey, clock: systemClock }), info };
}

/** Sends one request and reads until the errno line. */
async function ask(path: string, req: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(req));
    let text = "";
    const buf = new Uint8Array(4096);
    while (!/errno=-?\d+\n\n$/.test(text)) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

Deno.test("uapi: a socket left by a dead process is replaced; a live one is not taken over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-uapi-" });
  const path = `${dir}/pct0.sock`;
  try {
    // A process that died with its socket: the file stays, nobody answers.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });
        console.log("up"); setInterval(() => {}, 1000);`,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read(); // "up": the socket exists
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    assert.ok((await Deno.lstat(path)).isSocket, "the dead process's socket is still there");

    const a = device();
    const first = await serveUapi("pct0", a.dev, a.info, { dir });
    assert.match(await ask(path, "get=1\n\n"), /^private_key=[0-9a-f]{64}\n[\s\S]*errno=0\n\n$/);

    // Now a live server holds it: another one is refused by name, and the first keeps serving.
    const b = device();
    await assert.rejects(
      () => serveUapi("pct0", b.dev, b.info, { dir }),
      /Cannot serve the WireGuard UAPI socket of "pct0": another running process serves .*pct0\.sock/,
    );
    assert.equal(
      await serveManagedUapi("pct0", b.dev, b.info, { dir }),
      null,
      "managed: a warning",
    );
    await assert.rejects(() => claimUapiPath(path, "pct0"), /another running process/);
    assert.match(await ask(path, "get=1\n\n"), /errno=0/);

    // set is refused as wireguard-go refuses (negative errno), an unknown request is invalid.
    assert.equal(await ask(path, "set=1\nprivate_key=00\n\n"), "errno=-95\n\n");
    assert.equal(await ask(path, "frobnicate=1\n\n"), "errno=-22\n\n");

    await first.close();
    assert.equal(await Deno.lstat(path).then(() => true, () => false), false, "removed on close");
    a.dev.close();
    b.dev.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
