/**
 * The lab's own services, run as background processes by `lab up`:
 * - the "internet": an HTTP server that tells each client which address it
 *   came from (so a test can see the edge's address), and a DNS server for
 *   the lab's `example.test` names and `corp.internal` (standing in for a
 *   corporate DNS: `wiki.corp.internal` is the private app);
 * - the private app: an HTTP server reachable only from the edge;
 * - console bridges: TCP on 127.0.0.1 in a namespace ⇄ a Unix socket ⇄ TCP
 *   on the host's 127.0.0.1, so a browser on the host reaches the consoles.
 */
import { Hono } from "hono";
import type { ServeFn } from "../serve.ts";
import { startDnsServer } from "../edge/dns.ts";
import { ADDR, TEN_NAME, WEB_NAME, WIKI_NAME } from "./topology.ts";
import { logger } from "../log.ts";

const log = logger("lab");

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    Deno.addSignalListener("SIGTERM", () => resolve());
    Deno.addSignalListener("SIGINT", () => resolve());
  });
}

/** Builds an app that greets the client with its address (text and JSON). */
export function whoAmIApp(title: string): Hono<{ Bindings: { remote: string } }> {
  const app = new Hono<{ Bindings: { remote: string } }>();
  app.get("/ip", (c) => c.json({ ip: c.env.remote, server: title }));
  app.get("/", (c) => c.text(`${title}. You came from ${c.env.remote}.\n`));
  return app;
}

/** Runs the lab internet (HTTP :80 and DNS :53) until SIGTERM. */
export async function runInternet(serve: ServeFn): Promise<void> {
  const app = whoAmIApp("Hello from the lab internet");
  const http = serve(
    { hostname: "0.0.0.0", port: 80 },
    (req, info) => app.fetch(req, { remote: info.remoteAddr.hostname }),
  );
  const dns = await startDnsServer({
    listen: { hostname: "0.0.0.0", port: 53 },
    // corp.internal stands in for a corporate DNS: the private app's name.
    zones: ["example.test", "corp.internal"],
    records: [
      { name: WEB_NAME, type: "A", class: 1, ttl: 60, address: ADDR.inet },
      { name: WIKI_NAME, type: "A", class: 1, ttl: 60, address: ADDR.app },
      { name: TEN_NAME.name, type: "A", class: 1, ttl: 60, address: TEN_NAME.address },
    ],
    lookup: () => null,
    upstream: [],
    allow: () => true,
  });
  log.info("Lab internet up", { http: 80, dns: dns.port });
  await waitForSignal();
  await http.shutdown();
  await dns.close();
}

/** Runs the private app (HTTP :80) until SIGTERM. */
export async function runPrivateApp(serve: ServeFn): Promise<void> {
  const app = whoAmIApp("Private app behind the edge");
  const http = serve(
    { hostname: "0.0.0.0", port: 80 },
    (req, info) => app.fetch(req, { remote: info.remoteAddr.hostname }),
  );
  await waitForSignal();
  await http.shutdown();
}

async function pipe(a: Deno.Conn, b: Deno.Conn): Promise<void> {
  const close = () => {
    for (const c of [a, b]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  };
  await Promise.race([
    a.readable.pipeTo(b.writable, { preventClose: true }).catch(() => {}),
    b.readable.pipeTo(a.writable, { preventClose: true }).catch(() => {}),
  ]);
  close();
}

/** Inside a namespace: accepts on Unix socket `path`, connects to 127.0.0.1:`port`. */
export async function runBridgeIn(path: string, port: number): Promise<void> {
  await Deno.remove(path).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path });
  await Deno.chmod(path, 0o600);
  const stop = waitForSignal().then(() => listener.close());
  for await (const conn of listener) {
    Deno.connect({ hostname: "127.0.0.1", port })
      .then((up) => pipe(conn, up))
      .catch(() => conn.close());
  }
  await stop;
  await Deno.remove(path).catch(() => {});
}

/** On the host: accepts on 127.0.0.1:`port` for each mapping, connects to its Unix socket. */
export async function runBridgeOut(mappings: { port: number; path: string }[]): Promise<void> {
  const listeners = mappings.map((m) => ({
    m,
    l: Deno.listen({ hostname: "127.0.0.1", port: m.port }),
  }));
  const loops = listeners.map(async ({ m, l }) => {
    for await (const conn of l) {
      Deno.connect({ transport: "unix", path: m.path })
        .then((up) => pipe(conn, up))
        .catch(() => conn.close());
    }
  });
  await waitForSignal();
  for (const { l } of listeners) l.close();
  await Promise.allSettled(loops);
}
