import assert from "node:assert/strict";
import { Poller, POLLIN } from "../../src/net/poller.ts";
import { libc } from "../../src/net/errno.ts";
import { EFD_NONBLOCK } from "../../ffi/libc.ts";

const isLinux = Deno.build.os === "linux";

function signal(fd: number): void {
  libc().write(fd, new Uint8Array(new BigUint64Array([1n]).buffer), 8n);
}

function withEventfd<T>(fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = libc().eventfd(0, EFD_NONBLOCK);
  assert.ok(fd >= 0);
  return fn(fd).finally(() => libc().close(fd));
}

Deno.test({ name: "poller times out when nothing is ready", ignore: !isLinux }, async () => {
  await withEventfd(async (fd) => {
    const p = new Poller();
    try {
      p.add(fd, POLLIN);
      const t0 = performance.now();
      assert.equal(await p.wait(60), 0);
      assert.ok(performance.now() - t0 >= 50, "waited for the timeout");
      assert.equal(p.revents(fd), 0);
      assert.equal(await p.wait(0), 0);
    } finally {
      p.close();
    }
  });
});

Deno.test({ name: "poller reports an fd that is already ready", ignore: !isLinux }, async () => {
  await withEventfd(async (fd) => {
    const p = new Poller();
    try {
      p.add(fd, POLLIN);
      signal(fd);
      assert.equal(p.waiting, false);
      const r = p.wait(1000);
      assert.equal(p.waiting, false, "the synchronous poll answered, nothing parked");
      assert.equal(await r, 1);
      assert.equal(p.revents(fd) & POLLIN, POLLIN);
      assert.equal(p.pollNow(), 1, "level-triggered: still ready");
    } finally {
      p.close();
    }
  });
});

Deno.test(
  { name: "poller parked wait ends when an fd becomes ready", ignore: !isLinux },
  async () => {
    await withEventfd(async (a) => {
      await withEventfd(async (b) => {
        const p = new Poller();
        try {
          p.add(a, POLLIN);
          p.add(b, POLLIN);
          const r = p.wait(5000);
          assert.equal(p.waiting, true);
          setTimeout(() => signal(b), 20);
          const t0 = performance.now();
          assert.equal(await r, 1);
          assert.ok(performance.now() - t0 < 2000);
          assert.equal(p.revents(a), 0);
          assert.equal(p.revents(b) & POLLIN, POLLIN);
        } finally {
          p.close();
        }
      });
    });
  },
);

Deno.test({ name: "poller wake() interrupts a wait forever", ignore: !isLinux }, async () => {
  const p = new Poller();
  try {
    const r = p.wait(-1);
    setTimeout(() => p.wake(), 10);
    assert.equal(await r, 0);
    assert.equal(p.wakeups, 1);
    // A wake before the wait makes the next wait return at once.
    p.wake();
    assert.equal(await p.wait(-1), 0);
    assert.equal(p.wakeups, 2);
  } finally {
    p.close();
  }
});

Deno.test(
  { name: "poller close ends a pending wait and is idempotent", ignore: !isLinux },
  async () => {
    const p = new Poller();
    const r = p.wait(-1);
    const same = p.wait(-1);
    assert.equal(r, same, "concurrent waiters share one parked poll");
    setTimeout(() => p.close(), 10);
    assert.equal(await r, 0);
    assert.equal(p.closed, true);
    assert.equal(p.wakeFd, -1);
    p.close();
    assert.equal(await p.wait(-1), 0);
    assert.equal(p.pollNow(), 0);
  },
);

Deno.test({ name: "poller rejects a bad fd", ignore: !isLinux }, () => {
  const p = new Poller();
  try {
    assert.throws(() => p.add(-1, POLLIN), /Cannot poll fd -1/);
  } finally {
    p.close();
  }
});
