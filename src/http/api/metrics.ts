/**
 * Prometheus text metrics for the edge: request counts by route and status,
 * enrolment outcomes, and gauges read at scrape time from the store, the
 * tunnel port and access enforcement.
 */
import { TUNNEL_UP_MS } from "../../edge/devices.ts";
import type { EdgeContext } from "../../edge/context.ts";

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** In-process counters. */
export class EdgeMetrics {
  #http = new Map<string, number>();
  #enrol = new Map<string, number>();

  /** Counts one HTTP request. */
  request(method: string, route: string, status: number): void {
    const k = `${method}\u0000${route}\u0000${status}`;
    this.#http.set(k, (this.#http.get(k) ?? 0) + 1);
  }

  /** Counts one enrolment outcome ("ok" or an error code). */
  enrolment(result: string): void {
    this.#enrol.set(result, (this.#enrol.get(result) ?? 0) + 1);
  }

  /** Renders every metric in the Prometheus text format. */
  render(ctx: EdgeContext): string {
    const lines: string[] = [];
    const now = ctx.clock.now();
    const stats = ctx.tunnel.peerStats();
    let rx = 0, tx = 0, up = 0;
    for (const s of stats.values()) {
      rx += s.rxBytes;
      tx += s.txBytes;
      if (s.lastHandshake !== null && now - s.lastHandshake < TUNNEL_UP_MS) up++;
    }
    const gauge = (name: string, help: string, v: number) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${v}`);
    gauge(
      "portcullis_devices_enrolled",
      "Devices enrolled on this edge.",
      ctx.store.devices.count(),
    );
    gauge("portcullis_devices_online", "Devices with a live tunnel (handshake within 180 s).", up);
    gauge("portcullis_policy_revision", "Policy revision counter.", ctx.policy.revision());
    lines.push(
      "# HELP portcullis_tunnel_rx_bytes_total Bytes received from devices through the tunnel.",
      "# TYPE portcullis_tunnel_rx_bytes_total counter",
      `portcullis_tunnel_rx_bytes_total ${rx}`,
      "# HELP portcullis_tunnel_tx_bytes_total Bytes sent to devices through the tunnel.",
      "# TYPE portcullis_tunnel_tx_bytes_total counter",
      `portcullis_tunnel_tx_bytes_total ${tx}`,
      "# HELP portcullis_enrollments_total Enrolment attempts by result.",
      "# TYPE portcullis_enrollments_total counter",
    );
    for (const [result, n] of this.#enrol) {
      lines.push(`portcullis_enrollments_total{result="${esc(result)}"} ${n}`);
    }
    const access = ctx.dataPlaneState?.().enforcement as Record<string, number> | undefined;
    if (access) {
      gauge("portcullis_access_flows", "Flows in the connection tracker.", access.flows ?? 0);
      lines.push(
        "# HELP portcullis_access_decisions_total New flows decided, by verdict.",
        "# TYPE portcullis_access_decisions_total counter",
        `portcullis_access_decisions_total{verdict="allow"} ${access.allowed ?? 0}`,
        `portcullis_access_decisions_total{verdict="deny"} ${access.denied ?? 0}`,
        "# HELP portcullis_access_rejects_total Rejections sent to devices, by kind.",
        "# TYPE portcullis_access_rejects_total counter",
        `portcullis_access_rejects_total{kind="tcp_reset"} ${access.resets ?? 0}`,
        `portcullis_access_rejects_total{kind="icmp_prohibited"} ${access.icmpErrors ?? 0}`,
        `portcullis_access_rejects_total{kind="rate_limited"} ${access.rejectsLimited ?? 0}`,
        "# HELP portcullis_access_unsolicited_total Packets towards devices that belong to no flow (dropped).",
        "# TYPE portcullis_access_unsolicited_total counter",
        `portcullis_access_unsolicited_total ${access.unsolicited ?? 0}`,
      );
    }
    lines.push(
      "# HELP portcullis_http_requests_total HTTP requests by method, route and status.",
      "# TYPE portcullis_http_requests_total counter",
    );
    for (const [k, n] of this.#http) {
      const [method, route, status] = k.split("\u0000");
      lines.push(
        `portcullis_http_requests_total{method="${esc(method)}",route="${
          esc(route)
        }",status="${status}"} ${n}`,
      );
    }
    return lines.join("\n") + "\n";
  }
}
