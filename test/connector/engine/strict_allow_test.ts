/** The edge's hosts and addresses a traffic block lets through (tables). */
import assert from "node:assert/strict";
import {
  bootstrapUrlOf,
  edgeAllowList,
  edgeHosts,
} from "../../../src/connector/engine/strict_allow.ts";
import type { StoredEnrollment } from "../../../src/store/connector_state.ts";
import { setLogSinks } from "../../../src/log.ts";
import { keyFor } from "./helpers.ts";

setLogSinks([]);

const ENROLLMENT: StoredEnrollment = {
  deviceId: "dev_1",
  apiUrl: "https://api.edge.test:8443",
  caPem: "",
  address: "100.64.0.2",
  network: "100.64.0.0/16",
  edgeAddress: "100.64.0.1",
  edgePublicKey: "",
  endpoints: [
    { transport: "udp", host: "192.0.2.1", port: 443 },
    { transport: "tls", host: "2001:db8::1", port: 443 },
  ],
  user: null,
  group: null,
  enrolledAt: 0,
};

Deno.test("edge hosts: from the enrolment, bootstrap URL, key and a forgotten enrolment", () => {
  const table: [string, Parameters<typeof edgeHosts>[0], string[]][] = [
    [
      "nothing known",
      { lastHosts: [], enrollment: null, bootstrapUrl: null, enrollmentKey: null },
      [],
    ],
    ["enrolment", {
      lastHosts: [],
      enrollment: ENROLLMENT,
      bootstrapUrl: "http://boot.edge.test:8081",
      enrollmentKey: null,
    }, ["api.edge.test", "192.0.2.1", "2001:db8::1", "boot.edge.test"]],
    ["key only, with IPv6 literal", {
      lastHosts: [],
      enrollment: null,
      bootstrapUrl: null,
      enrollmentKey: keyFor("[2001:db8::7]"),
    }, ["2001:db8::7"]],
    ["a bad key adds nothing", {
      lastHosts: ["198.51.100.9"],
      enrollment: null,
      bootstrapUrl: "not a url",
      enrollmentKey: "pc1.broken",
    }, ["198.51.100.9"]],
    ["duplicates once", {
      lastHosts: ["edge.test"],
      enrollment: null,
      bootstrapUrl: "http://edge.test:8081",
      enrollmentKey: keyFor("edge.test"),
    }, ["edge.test"]],
  ];
  for (const [name, sources, want] of table) assert.deepEqual(edgeHosts(sources), want, name);
});

Deno.test("bootstrap URL: configured, stored, or the API host's default port", () => {
  assert.equal(bootstrapUrlOf("http://x:1", ENROLLMENT), "http://x:1");
  assert.equal(
    bootstrapUrlOf(undefined, { ...ENROLLMENT, bootstrapUrl: "http://b:8081" }),
    "http://b:8081",
  );
  assert.equal(bootstrapUrlOf(undefined, ENROLLMENT), "http://api.edge.test:8081");
  assert.equal(bootstrapUrlOf(undefined, null), null);
  assert.equal(bootstrapUrlOf(undefined, { ...ENROLLMENT, apiUrl: "::" }), null);
});

Deno.test("allow-list: literals kept canonical, names resolved, failures skipped", async () => {
  const resolved: string[] = [];
  const resolve = (h: string) => {
    resolved.push(h);
    if (h === "broken.test") return Promise.reject(new Error("SERVFAIL"));
    return Promise.resolve(h === "edge.test" ? ["192.0.2.5", "2001:DB8:0::5", "junk"] : []);
  };
  const list = await edgeAllowList(
    ["192.0.2.1", "2001:db8:0:0::1", "edge.test", "broken.test", "gone.test"],
    resolve,
  );
  assert.deepEqual(list, ["192.0.2.1", "2001:db8::1", "192.0.2.5", "2001:db8::5"]);
  assert.deepEqual(
    resolved,
    ["edge.test", "broken.test", "gone.test"],
    "literals are not resolved",
  );
});
