/**
 * One "edge" of test/store/pg_concurrency_test.ts: its own process and
 * connection, enrolling `count` devices (each a device row and an address
 * lease in one transaction, as the edge's enrolment does) and trying to
 * claim the shared single-use key once per device. Prints one JSON line.
 */
import { openStore } from "../../../src/store/mod.ts";
import { deviceRecord } from "../backends.ts";

const [url, edge, countArg] = Deno.args;
const store = openStore(url);
let claimed = 0;
const hosts: number[] = [];
for (let i = 0; i < Number(countArg); i++) {
  const id = `${edge}-${i}`;
  store.transaction(() => {
    if (store.enrollmentKeys.claimUse("single", Date.now())) claimed++;
    store.devices.insert(deviceRecord(id));
    const host = store.leases.allocate(id, Date.now(), 65534);
    if (host === null) throw new Error("range full");
    hosts.push(host);
  });
}
store.close();
console.log(JSON.stringify({ edge, claimed, hosts }));
