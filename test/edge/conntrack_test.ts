import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import {
  DEFAULT_TIMEOUTS,
  FLOW,
  FlowTable,
  newFlowKey,
  reverseKey,
} from "../../src/edge/access/conntrack.ts";

function key(src: number, dst: number, sport: number, dport: number, proto = 6) {
  const k = newFlowKey();
  k[0] = src;
  k[4] = dst;
  k[8] = (sport << 16 | dport) >>> 0;
  k[9] = 4 << 8 | proto;
  return k;
}

const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;

Deno.test("conntrack: insert, lookup both ways, remove", () => {
  const clock = new ManualClock(0);
  const t = new FlowTable({ capacity: 16, clock });
  const k = key(0x64400002, 0xc6130010, 40000, 80);
  assert.equal(t.lookup(k), -1);
  const s = t.insert(k, true, 3, 7, 1);
  assert.equal(t.lookup(k), s);
  assert.equal(t.dev[s], 3);
  assert.equal(t.gen[s], 7);
  assert.equal(t.verdict[s], 1);
  const r = reverseKey(k, newFlowKey());
  assert.equal(r[0], 0xc6130010);
  assert.equal(r[8], (80 << 16 | 40000) >>> 0);
  assert.equal(t.lookup(r), -1, "the reverse key is another key");
  assert.equal(t.lookup(reverseKey(r, newFlowKey())), s);
  t.remove(s);
  assert.equal(t.lookup(k), -1);
  assert.equal(t.size, 0);
});

Deno.test("conntrack: TCP states move the idle timeout", () => {
  const clock = new ManualClock(0);
  const t = new FlowTable({ capacity: 16, clock });
  const table: [string, [boolean, number][], number, number][] = [
    ["SYN only", [[false, SYN]], FLOW.NEW, DEFAULT_TIMEOUTS.tcpNew],
    [
      "handshake",
      [[false, SYN], [true, SYN | ACK], [false, ACK]],
      FLOW.ESTABLISHED,
      DEFAULT_TIMEOUTS.tcpEstablished,
    ],
    ["mid-stream pick-up", [[false, ACK]], FLOW.ESTABLISHED, DEFAULT_TIMEOUTS.tcpEstablished],
    [
      "FIN",
      [[false, SYN], [true, SYN | ACK], [false, FIN | ACK]],
      FLOW.CLOSING,
      DEFAULT_TIMEOUTS.tcpClosing,
    ],
    ["RST", [[false, SYN], [true, RST | ACK]], FLOW.CLOSED, DEFAULT_TIMEOUTS.tcpClosed],
    [
      "RST then FIN stays closed",
      [[false, SYN], [true, RST], [false, FIN]],
      FLOW.CLOSED,
      DEFAULT_TIMEOUTS.tcpClosed,
    ],
  ];
  let port = 1000;
  for (const [name, packets, state, timeout] of table) {
    const k = key(1, 2, port++, 443);
    const s = t.insert(k, true, 0, 1, 1);
    for (const [reply, flags] of packets) t.seen(s, reply, flags);
    assert.equal(t.state[s], state, name);
    clock.advance(timeout - 1);
    assert.equal(t.lookup(k), s, `${name}: alive before its timeout`);
    t.seen(s, false, 0); // a packet refreshes the timeout
    clock.advance(timeout + 1);
    assert.equal(t.lookup(k), -1, `${name}: gone after its timeout`);
  }
  // UDP: new until answered; denied flows are short-lived.
  const u = key(1, 2, 5353, 53, 17);
  const su = t.insert(u, true, 0, 1, 1);
  assert.equal(t.state[su], FLOW.NEW);
  t.seen(su, true, 0);
  assert.equal(t.state[su], FLOW.ESTABLISHED);
  clock.advance(DEFAULT_TIMEOUTS.udpNew + 1);
  assert.equal(t.lookup(u), su, "a replied UDP flow lives longer");
  const d = key(1, 2, 9, 9);
  t.insert(d, false, 0, 1, 1);
  clock.advance(DEFAULT_TIMEOUTS.denied + 1);
  assert.equal(t.lookup(d), -1);
  assert.ok(t.stats.expired >= 7);
});

Deno.test("conntrack: bounded, evicts idle flows before busy ones", () => {
  const clock = new ManualClock(0);
  const t = new FlowTable({ capacity: 4, clock });
  const [a, b, c, d, e, f] = [1, 2, 3, 4, 5, 6].map((p) => key(1, 2, p, 80));
  for (const k of [a, b, c, d]) t.insert(k, true, 0, 1, 1);
  t.insert(e, true, 0, 1, 1); // every flow had its second chance: the oldest goes
  assert.equal(t.lookup(a), -1);
  t.lookup(b); // b is busy again
  t.insert(f, true, 0, 1, 1);
  assert.ok(t.lookup(b) >= 0, "the busy flow stays");
  assert.equal(t.lookup(c), -1, "the idle one goes");
  assert.equal(t.size, 4);
  for (let n = 0; n < 20; n++) t.insert(key(3, 4, n, 80), true, 0, 1, 1);
  assert.equal(t.size, 4, "never grows past capacity");
  assert.equal(t.stats.evicted, 22);
  // An expired flow is evicted before any live one.
  const clock2 = new ManualClock(0);
  const u = new FlowTable({ capacity: 2, clock: clock2 });
  u.insert(key(1, 2, 1, 53, 17), true, 0, 1, 1);
  clock2.advance(DEFAULT_TIMEOUTS.udpNew + 1);
  u.insert(key(1, 2, 2, 443), true, 0, 1, 1);
  u.insert(key(1, 2, 3, 443), true, 0, 1, 1);
  assert.ok(u.lookup(key(1, 2, 2, 443)) >= 0);
});

Deno.test("conntrack: random inserts and removals agree with a Map (backward-shift deletion)", () => {
  const clock = new ManualClock(0);
  const t = new FlowTable({ capacity: 512, clock });
  const model = new Map<string, number>();
  let seed = 42;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let step = 0; step < 20_000; step++) {
    // A small key space so collisions, clusters and wrap-around all happen.
    const k = key(rnd(4), rnd(4), rnd(16), rnd(4));
    const id = Array.from(k).join(",");
    const have = model.get(id);
    if (have === undefined) {
      if (model.size < 500) {
        assert.equal(t.lookup(k), -1, `step ${step}: unexpected hit`);
        model.set(id, t.insert(k, true, 0, 1, 1));
      }
    } else if (rnd(2)) {
      assert.equal(t.lookup(k), have, `step ${step}: lost a flow`);
      t.remove(have);
      model.delete(id);
    } else {
      assert.equal(t.lookup(k), have, `step ${step}: lost a flow`);
    }
  }
  assert.equal(t.size, model.size);
});

Deno.test("conntrack: sweep removes expired flows in bounded steps", () => {
  const clock = new ManualClock(0);
  const t = new FlowTable({ capacity: 64, clock });
  for (let i = 0; i < 40; i++) t.insert(key(1, 2, i, 53, 17), true, 0, 1, 1);
  clock.advance(DEFAULT_TIMEOUTS.udpNew + 1);
  assert.equal(t.sweep(16), 16);
  let total = 16;
  while (t.size > 0) total += t.sweep(16);
  assert.equal(total, 40);
});

Deno.test("conntrack: one device cannot push the others' flows out", () => {
  const clock = new ManualClock(0);
  const t = new FlowTable({ capacity: 64, perDevice: 16, clock });
  const quiet = Array.from({ length: 10 }, (_, i) => key(2, 9, 100 + i, 443));
  for (const k of quiet) t.insert(k, true, 1, 1, 1);
  // Device 0 opens flows by the thousand (a scan).
  for (let p = 0; p < 5000; p++) t.insert(key(1, 9, p, 80), false, 0, 1, 1);
  assert.equal(t.flowsOf(0), 16, "the scanner holds its share only");
  assert.equal(t.flowsOf(1), 10);
  for (const k of quiet) assert.ok(t.lookup(k) >= 0, "every quiet flow is still there");
  // Handing a flow over keeps the counts.
  const s = t.lookup(quiet[0]);
  t.setDevice(s, 0);
  assert.equal(t.flowsOf(0), 17);
  assert.equal(t.flowsOf(1), 9);
  t.remove(s);
  assert.equal(t.flowsOf(0), 16);
  assert.equal(t.size, 25);
});
