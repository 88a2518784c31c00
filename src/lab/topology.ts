/**
 * The lab topology as plain data: namespaces, links and addresses. `lab up`
 * builds exactly this; `lab down` removes exactly this. Addresses come from
 * the documentation and benchmarking ranges so they never clash with a real
 * network, and the LAN uses 192.168.50.0/24 as a branch office would.
 *
 *   ┌──────────────────────────────────────┐
 *   │ pcl-wan  (the internet's routers)    │
 *   └─┬────────────┬────────────┬────────┬─┘
 *     │192.0.2.0/24│198.51.100/24│203.0.113/24│198.18.0/24
 *  pcl-edge     pcl-ws       pcl-gw      pcl-inet (HTTP :80, DNS :53)
 *     │198.19.0.0/24           │192.168.50.0/24
 *  pcl-app (private app :80)  pcl-lan (a host behind the gateway box)
 *
 * `lab up --edges 2` adds pcl-edge2 (198.19.1.1, another region: the
 * routers delay traffic towards it by 40 ms) on one PostgreSQL with pcl-edge.
 *
 * Consoles listen on 127.0.0.1 inside their namespaces, as in production;
 * the lab bridges them to the host's loopback through Unix sockets (which
 * network namespaces do not separate), so a browser on the host can open them.
 */

/** One point-to-point link between two namespaces. */
export interface LabLink {
  a: string;
  aIf: string;
  aAddr: string;
  b: string;
  bIf: string;
  bAddr: string;
}

/** A namespace and its default gateway. */
export interface LabHost {
  ns: string;
  gateway?: string;
  /** Forwards packets (routers, edge, gateway box). */
  router?: boolean;
  /** Its DNS server (default: the lab internet's). */
  resolver?: string;
}

/** Namespace names, fixed so `lab down` can find them after a crash. */
export const NS = {
  wan: "pcl-wan",
  edge: "pcl-edge",
  ws: "pcl-ws",
  gw: "pcl-gw",
  lan: "pcl-lan",
  inet: "pcl-inet",
  app: "pcl-app",
} as const;

/**
 * The second edge of `lab up --edges 2`: another "region", behind a delay
 * line in the internet's routers, sharing the first edge's PostgreSQL.
 */
export const EDGE2 = {
  ns: "pcl-edge2",
  addr: "198.19.1.1",
  net: "198.19.1.0/24",
  wanAddr: "198.19.1.254",
  wanIf: "edge2",
  tun: "pce1",
  /** Extra one-way delay towards it (ms). */
  delayMs: 40,
  /** The delay line's TUN in pcl-wan. */
  delayTun: "pcldly0",
} as const;

/** The second edge's namespace and its link to the internet's routers. */
export const EDGE2_HOST: LabHost = { ns: EDGE2.ns, gateway: EDGE2.wanAddr, router: true };
/** @see EDGE2_HOST */
export const EDGE2_LINK: LabLink = {
  a: NS.wan,
  aIf: EDGE2.wanIf,
  aAddr: `${EDGE2.wanAddr}/24`,
  b: EDGE2.ns,
  bIf: "eth0",
  bAddr: `${EDGE2.addr}/24`,
};

/** Addresses the lab uses, by role. */
export const ADDR = {
  edge: "192.0.2.1",
  ws: "198.51.100.10",
  gw: "203.0.113.10",
  gwLan: "192.168.50.1",
  lan: "192.168.50.10",
  inet: "198.18.0.80",
  edgeApp: "198.19.0.1",
  app: "198.19.0.10",
} as const;

/** Every namespace with its default route. */
export const HOSTS: LabHost[] = [
  { ns: NS.wan, router: true },
  { ns: NS.edge, gateway: "192.0.2.254", router: true },
  { ns: NS.ws, gateway: "198.51.100.254" },
  { ns: NS.gw, gateway: "203.0.113.254", router: true },
  { ns: NS.lan, gateway: ADDR.gwLan, resolver: ADDR.gwLan },
  { ns: NS.inet, gateway: "198.18.0.254" },
  { ns: NS.app, gateway: ADDR.edgeApp },
];

/** Every link. */
export const LINKS: LabLink[] = [
  {
    a: NS.wan,
    aIf: "edge0",
    aAddr: "192.0.2.254/24",
    b: NS.edge,
    bIf: "eth0",
    bAddr: `${ADDR.edge}/24`,
  },
  {
    a: NS.wan,
    aIf: "ws0",
    aAddr: "198.51.100.254/24",
    b: NS.ws,
    bIf: "eth0",
    bAddr: `${ADDR.ws}/24`,
  },
  {
    a: NS.wan,
    aIf: "gw0",
    aAddr: "203.0.113.254/24",
    b: NS.gw,
    bIf: "eth0",
    bAddr: `${ADDR.gw}/24`,
  },
  {
    a: NS.wan,
    aIf: "inet0",
    aAddr: "198.18.0.254/24",
    b: NS.inet,
    bIf: "eth0",
    bAddr: `${ADDR.inet}/24`,
  },
  {
    a: NS.edge,
    aIf: "app0",
    aAddr: `${ADDR.edgeApp}/24`,
    b: NS.app,
    bIf: "eth0",
    bAddr: `${ADDR.app}/24`,
  },
  {
    a: NS.gw,
    aIf: "lan0",
    aAddr: `${ADDR.gwLan}/24`,
    b: NS.lan,
    bIf: "eth0",
    bAddr: `${ADDR.lan}/24`,
  },
];

/** Ports of the lab's services. */
export const PORTS = {
  edgeApi: 8443,
  edgeConsole: 8080,
  edgeBootstrap: 8081,
  tunnel: 443,
  connectorConsole: 9080,
} as const;

/**
 * TUN interface names. The two connectors need different names although
 * they live in different namespaces: WireGuard UAPI sockets
 * (/var/run/wireguard/<name>.sock, what `wg show` reads) are shared by all.
 */
export const TUN = { edge: "pce0", ws: "pcc0", gw: "pcc1" } as const;

/** Host loopback ports where `lab up` exposes each console. */
export const HOST_CONSOLE_PORTS = { edge: 18080, ws: 19080, gw: 19081, edge2: 18081 } as const;

/** The lab's "internet" name for its web server (served by the lab DNS in pcl-inet). */
export const WEB_NAME = "www.example.test";

/** Machine groups of the lab's enrolment keys. */
export const GROUPS = { ws: "engineering", gw: "branch" } as const;

/** A private name the lab's DNS serves, standing in for a corporate DNS (an FQDN segment's app). */
export const WIKI_NAME = "wiki.corp.internal";

/**
 * A private name inside the default-excluded 10/8, and its address: an FQDN
 * segment the connector must route into the tunnel from the edge DNS answer
 * (test/e2e/access_test.ts gives the private app this second address).
 */
export const TEN_NAME = { name: "ten.corp.internal", address: "10.20.0.10" } as const;
