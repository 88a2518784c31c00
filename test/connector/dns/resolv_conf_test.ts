import assert from "node:assert/strict";
import {
  parseResolvConf,
  renderStubResolvConf,
  RESOLV_CONF_MARKER,
  ResolvConfManager,
} from "../../../src/connector/dns/resolv_conf.ts";
import { InputError } from "../../../src/errors.ts";

Deno.test("parseResolvConf reads nameservers, search and options", () => {
  const cases: [string, string, { nameservers: string[]; search: string[]; options: string[] }][] =
    [
      ["empty", "", { nameservers: [], search: [], options: [] }],
      [
        "typical",
        "# comment\nnameserver 192.0.2.1\nnameserver 2001:db8::53 # trailing\nsearch corp.example lab.example\noptions ndots:2 edns0\n",
        {
          nameservers: ["192.0.2.1", "2001:db8::53"],
          search: ["corp.example", "lab.example"],
          options: ["ndots:2", "edns0"],
        },
      ],
      [
        "last search/domain wins, ; comments, tabs",
        "domain a.example\n; x\nsearch\tb.example\nnameserver\t10.0.0.1\n",
        { nameservers: ["10.0.0.1"], search: ["b.example"], options: [] },
      ],
    ];
  for (const [name, text, want] of cases) assert.deepEqual(parseResolvConf(text), want, name);
  assert.equal(
    renderStubResolvConf(
      parseResolvConf("nameserver 1.1.1.1\nsearch a.example b.example\noptions ndots:3\n"),
      "127.0.0.53",
    ),
    `${RESOLV_CONF_MARKER}\nnameserver 127.0.0.53\nsearch a.example b.example\noptions ndots:3\n`,
  );
});

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "pc_resolv_" });
}

Deno.test("apply then restore puts back the exact bytes and mode", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/resolv.conf`;
    const original =
      "# from DHCP\r\nnameserver 192.0.2.1\nsearch corp.example\n\n\tnameserver 192.0.2.2\n\u00e9";
    await Deno.writeTextFile(path, original);
    await Deno.chmod(path, 0o640);
    const rc = new ResolvConfManager({ path });
    const parsed = await rc.apply("127.0.0.53");
    assert.deepEqual(parsed.nameservers, ["192.0.2.1", "192.0.2.2"]);
    const now = await Deno.readTextFile(path);
    assert.ok(now.startsWith(RESOLV_CONF_MARKER));
    assert.deepEqual(parseResolvConf(now), {
      nameservers: ["127.0.0.53"],
      search: ["corp.example"],
      options: [],
    });
    assert.ok(rc.hasBackup());
    await assert.rejects(() => rc.apply("127.0.0.53"), InputError, "a second apply is refused");
    await rc.restore();
    assert.equal(await Deno.readTextFile(path), original);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
    assert.ok(!rc.hasBackup());
    await rc.restore(); // no-op without a backup
    assert.equal(await Deno.readTextFile(path), original);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a symlinked resolv.conf is replaced, not written through, and the link comes back", async () => {
  const dir = await tempDir();
  try {
    const target = `${dir}/stub-resolv.conf`;
    const path = `${dir}/resolv.conf`;
    await Deno.writeTextFile(target, "nameserver 127.0.0.53\nsearch home.arpa\n");
    await Deno.symlink("stub-resolv.conf", path);
    const rc = new ResolvConfManager({ path });
    await rc.apply("127.0.0.54");
    assert.ok(!(await Deno.lstat(path)).isSymlink);
    assert.equal(
      await Deno.readTextFile(target),
      "nameserver 127.0.0.53\nsearch home.arpa\n",
      "target untouched",
    );
    assert.deepEqual(parseResolvConf(await Deno.readTextFile(path)).search, ["home.arpa"]);
    await rc.restore();
    assert.ok((await Deno.lstat(path)).isSymlink);
    assert.equal(await Deno.readLink(path), "stub-resolv.conf");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing resolv.conf is missing again after restore", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/resolv.conf`;
    const rc = new ResolvConfManager({ path });
    await rc.apply("127.0.0.53");
    assert.ok(await Deno.readTextFile(path));
    await rc.restore();
    await assert.rejects(() => Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recover() restores a backup left by a crash; a file replaced by someone else is kept", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/resolv.conf`;
    const original = "nameserver 198.51.100.1\nsearch crash.example\n";
    await Deno.writeTextFile(path, original);
    // First run "crashes" after apply: no restore.
    await new ResolvConfManager({ path }).apply("127.0.0.53");
    const second = new ResolvConfManager({ path });
    assert.ok(second.hasBackup());
    assert.equal(await second.recover(), true);
    assert.equal(await Deno.readTextFile(path), original);
    assert.equal(await second.recover(), false);

    // DHCP rewrites resolv.conf while we run: its version wins, the backup is dropped.
    await second.apply("127.0.0.53");
    await Deno.writeTextFile(path, "nameserver 203.0.113.1\n");
    await second.restore();
    assert.equal(await Deno.readTextFile(path), "nameserver 203.0.113.1\n");
    assert.ok(!second.hasBackup());

    // A torn (unparseable) backup is dropped without touching resolv.conf.
    await Deno.writeTextFile(`${path}.portcullis-backup`, "{not json");
    assert.equal(await second.recover(), true);
    assert.equal(await Deno.readTextFile(path), "nameserver 203.0.113.1\n");
    assert.ok(!second.hasBackup());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
