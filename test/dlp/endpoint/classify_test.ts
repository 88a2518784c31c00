/**
 * Which mounts endpoint DLP watches: mountinfo lines (escaped paths,
 * optional fields), network filesystems, and block devices that sysfs or
 * udev call removable — read from a sysfs and a udev database laid out as
 * the kernel and udev lay them out.
 */
import assert from "node:assert/strict";
import {
  classifyMount,
  parseUdevRecord,
  readDeviceFacts,
} from "../../../src/dlp/endpoint/classify.ts";
import { parseMountinfo } from "../../../src/dlp/endpoint/mountinfo.ts";
import { printingCoverage } from "../../../src/dlp/endpoint/printing.ts";

const MOUNTINFO = `22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
36 22 0:32 / /proc rw,nosuid - proc proc rw
41 22 8:17 / /media/ana/USB\\040STICK rw,nosuid,nodev shared:30 - vfat /dev/sdb1 rw,uid=1000
42 22 0:52 / /mnt/finance rw,relatime shared:31 - cifs //files.corp.example/finance rw,vers=3.1.1
43 22 0:53 / /home/ana/remote rw - fuse.sshfs ana@host:/srv rw
44 22 8:1 / /data rw - ext4 /dev/sda1 rw
45 22 7:3 / /tmp/img rw - ext4 /dev/loop3 rw
garbage line
46 22 x:y / /bad rw - ext4 /dev/x rw
`;

Deno.test("mountinfo: fields, escaped paths, garbage skipped", () => {
  const m = parseMountinfo(MOUNTINFO);
  assert.equal(m.length, 7);
  const usb = m.find((x) => x.id === 41)!;
  assert.equal(usb.mountPoint, "/media/ana/USB STICK");
  assert.equal(usb.fsType, "vfat");
  assert.equal(usb.device, "8:17");
  assert.equal(usb.source, "/dev/sdb1");
});

Deno.test("classify: network filesystems, sysfs removable (disk or parent), udev properties", async () => {
  const sys = await Deno.makeTempDir();
  const udev = await Deno.makeTempDir();
  try {
    // sysfs: /sys/dev/block/M:m is a link to the device directory; a partition's disk is its parent.
    const dev = (path: string, removable: string | null) => {
      Deno.mkdirSync(`${sys}/devices/${path}`, { recursive: true });
      if (removable !== null) Deno.writeTextFileSync(`${sys}/devices/${path}/removable`, removable);
    };
    Deno.mkdirSync(`${sys}/dev/block`, { recursive: true });
    dev("pci/usb1/sdb", "1");
    dev("pci/usb1/sdb/sdb1", null);
    dev("pci/ata1/sda", "0");
    dev("pci/ata1/sda/sda1", null);
    dev("virtual/block/loop3", "0");
    Deno.symlinkSync(`${sys}/devices/pci/usb1/sdb/sdb1`, `${sys}/dev/block/8:17`);
    Deno.symlinkSync(`${sys}/devices/pci/ata1/sda/sda1`, `${sys}/dev/block/8:1`);
    Deno.symlinkSync(`${sys}/devices/virtual/block/loop3`, `${sys}/dev/block/7:3`);
    Deno.writeTextFileSync(
      `${udev}/b7:3`,
      "S:disk/by-id/usb-Stick\nE:ID_BUS=usb\nE:ID_USB_DRIVER=usb-storage\n",
    );
    const src = { sysRoot: sys, udevDataDir: udev };
    const by = Object.fromEntries(
      parseMountinfo(MOUNTINFO).map((m) => [
        m.mountPoint,
        classifyMount(m, readDeviceFacts(m.device, src)),
      ]),
    );
    const table: [string, string | null, RegExp | null][] = [
      ["/", null, null],
      ["/proc", null, null],
      ["/media/ana/USB STICK", "removable_media", /kernel marks the device removable/],
      ["/mnt/finance", "network_share", /cifs/],
      ["/home/ana/remote", "network_share", /fuse\.sshfs/],
      ["/data", null, null],
      ["/tmp/img", "removable_media", /ID_BUS=usb/],
    ];
    for (const [mp, channel, why] of table) {
      assert.equal(by[mp]?.channel ?? null, channel, mp);
      if (why) assert.match(by[mp]!.reason, why, mp);
    }
    assert.deepEqual(parseUdevRecord("E:A=1\nE:B=x=y\nS:link\nE:=bad\n"), { A: "1", B: "x=y" });
    assert.equal(readDeviceFacts("0:52", src), null, "anonymous devices have no block device");
    assert.equal(readDeviceFacts("9:9", src), null, "unknown devices");
  } finally {
    await Deno.remove(sys, { recursive: true });
    await Deno.remove(udev, { recursive: true });
  }
});

Deno.test("printing: not covered without CUPS, without the backend, or without a rule", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rule = { rules: [{ enabled: true, channels: ["printing"] }] } as never;
    assert.match(printingCoverage(rule, `${dir}/none`).reason, /CUPS is not installed/);
    assert.match(printingCoverage(rule, dir).reason, /backend is not/);
    await Deno.writeTextFile(`${dir}/portcullis-dlp`, "");
    assert.equal(printingCoverage(rule, dir).covered, true);
    assert.match(printingCoverage({ rules: [] }, dir).reason, /No DLP rule covers printing/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
