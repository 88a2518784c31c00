/**
 * How the store opens a `postgres` (porsager) client, shared by the query
 * worker (worker.ts) and the change feed's LISTEN connection
 * (notify_feed.ts), so both reach the same server the same way.
 */
import postgres from "postgres";

/** What differs between the store's two clients. */
export interface ClientOptions {
  /** Shown in pg_stat_activity (which edge, which connection). */
  application: string;
  /** Longest to wait for the server when connecting (s). */
  connectTimeoutS: number;
  /** Longest a single statement may run on the server (ms); none when absent. */
  statementTimeoutMs?: number;
}

/**
 * Seconds before the next connection attempt after `retries` failed ones:
 * porsager's default grows to 20 s, which would leave an edge's feed deaf
 * for that long after a server restart; this stays at or below 1 s.
 */
export function reconnectDelayS(retries: number): number {
  return Math.min(0.05 * 2 ** retries, 1);
}

/** A client for `url` (postgres://…, `?host=/dir` for a Unix socket directory). */
export function openClient(url: string, opts: ClientOptions): postgres.Sql {
  const numeric = { to: 1700, from: [20, 1700], serialize: String, parse: Number };
  // A Unix socket directory comes as ?host=/dir, as libpq spells it.
  const u = new URL(url);
  const socketDir = u.searchParams.get("host");
  u.searchParams.delete("host");
  return postgres(u.toString(), {
    ...(socketDir ? { host: socketDir } : {}),
    max: 1,
    idle_timeout: 0,
    connect_timeout: opts.connectTimeoutS,
    backoff: reconnectDelayS,
    // Keep-alive probes after 15 s idle: a connection cut without a FIN (a
    // partition) is noticed by the operating system instead of never.
    keep_alive: 15,
    onnotice: () => {},
    types: { numeric } as unknown as Record<string, postgres.PostgresType>,
    connection: {
      application_name: opts.application,
      ...(opts.statementTimeoutMs !== undefined
        ? { statement_timeout: opts.statementTimeoutMs }
        : {}),
    },
  });
}
