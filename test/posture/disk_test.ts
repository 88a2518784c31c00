/** Disk encryption: the root filesystem's device, walked through sysfs slaves, on fake trees. */
import assert from "node:assert/strict";
import { inspectRootDisk, rootMount } from "../../src/posture/mod.ts";

const mountinfo = (rootDev: string, source: string) =>
  [
    `22 27 0:21 / /proc rw,relatime - proc proc rw`,
    `27 1 ${rootDev} / / rw,relatime - ext4 ${source} rw`,
    `30 27 8:1 / /boot rw,relatime - ext4 /dev/sda1 rw`,
  ].join("\n") + "\n";

/** Builds /sys/dev/block and /sys/devices/virtual/block like the kernel: symlinks and dm/uuid files. */
async function fakeSys(
  sys: string,
  devs: { devno: string; name: string; uuid?: string; slaves?: string[] }[],
): Promise<void> {
  await Deno.mkdir(`${sys}/dev/block`, { recursive: true });
  for (const d of devs) {
    const dir = `${sys}/devices/virtual/block/${d.name}`;
    await Deno.mkdir(`${dir}/slaves`, { recursive: true });
    if (d.uuid) {
      await Deno.mkdir(`${dir}/dm`);
      await Deno.writeTextFile(`${dir}/dm/uuid`, `${d.uuid}\n`);
      await Deno.writeTextFile(`${dir}/dm/name`, `${d.name}-mapped\n`);
    }
    await Deno.symlink(`../../devices/virtual/block/${d.name}`, `${sys}/dev/block/${d.devno}`);
  }
  for (const d of devs) {
    for (const s of d.slaves ?? []) {
      await Deno.symlink(`../../${s}`, `${sys}/devices/virtual/block/${d.name}/slaves/${s}`);
    }
  }
}

Deno.test("disk: root on LVM on LUKS is encrypted; root on a plain partition is not, whatever else is", async () => {
  const table: {
    name: string;
    root: [string, string];
    devs: { devno: string; name: string; uuid?: string; slaves?: string[] }[];
    rdev?: number;
    want: { encrypted: boolean; device: string | null; cryptDevice: string | null };
  }[] = [
    {
      name: "LVM on LUKS",
      root: ["253:1", "/dev/mapper/vg-root"],
      devs: [
        { devno: "253:0", name: "dm-0", uuid: "CRYPT-LUKS2-abcd-luks" },
        { devno: "253:1", name: "dm-1", uuid: "LVM-xyz", slaves: ["dm-0"] },
      ],
      want: { encrypted: true, device: "253:1", cryptDevice: "dm-0-mapped" },
    },
    {
      name: "LUKS directly",
      root: ["253:0", "/dev/mapper/root"],
      devs: [{ devno: "253:0", name: "dm-0", uuid: "CRYPT-LUKS1-abcd-root" }],
      want: { encrypted: true, device: "253:0", cryptDevice: "dm-0-mapped" },
    },
    {
      name: "plain partition, an encrypted swap elsewhere does not count",
      root: ["8:2", "/dev/sda2"],
      devs: [
        { devno: "8:2", name: "sda2" },
        { devno: "253:0", name: "dm-0", uuid: "CRYPT-PLAIN-swap" },
      ],
      want: { encrypted: false, device: "8:2", cryptDevice: null },
    },
    {
      name: "LVM without encryption",
      root: ["253:1", "/dev/mapper/vg-root"],
      devs: [
        { devno: "8:3", name: "sda3" },
        { devno: "253:1", name: "dm-1", uuid: "LVM-xyz", slaves: ["sda3"] },
      ],
      want: { encrypted: false, device: "253:1", cryptDevice: null },
    },
    {
      name: "btrfs (anonymous device number) on LUKS, through the source's device node",
      root: ["0:31", "/dev/mapper/root"],
      devs: [{ devno: "253:0", name: "dm-0", uuid: "CRYPT-LUKS2-abcd-root" }],
      rdev: (253 << 8) | 0,
      want: { encrypted: true, device: "253:0", cryptDevice: "dm-0-mapped" },
    },
    {
      name: "overlay root (a container): not on a block device",
      root: ["0:45", "overlay"],
      devs: [{ devno: "253:0", name: "dm-0", uuid: "CRYPT-LUKS2-abcd-root" }],
      want: { encrypted: false, device: null, cryptDevice: null },
    },
  ];
  for (const t of table) {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/mountinfo`, mountinfo(...t.root));
      await fakeSys(`${dir}/sys`, t.devs);
      const got = await inspectRootDisk({
        mountinfoPath: `${dir}/mountinfo`,
        sysPath: `${dir}/sys`,
        statRdev: (p) => Promise.resolve(p === t.root[1] && t.rdev !== undefined ? t.rdev : null),
      });
      assert.deepEqual(got, t.want, t.name);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("disk: the root mount is the last mount on /", () => {
  assert.deepEqual(rootMount(mountinfo("8:2", "/dev/sda2")), { devno: "8:2", source: "/dev/sda2" });
  assert.equal(rootMount("garbage\n\n"), null);
});

Deno.test("disk: the real system answers without error", async () => {
  const got = await inspectRootDisk();
  assert.equal(typeof got.encrypted, "boolean");
});
