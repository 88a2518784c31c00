/**
 * Prometheus text metrics for the edge: request counts by route and status,
 * enrolment outcomes, and gauges read at scrape time from the store and the
 * tunnel port.
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
