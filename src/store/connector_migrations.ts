/**
 * Schema of the connector's own database (one per connector data directory).
 * Applied through Database.open from db.ts, so the connector shares the
 * edge's migration mechanism (numbered, one transaction) but not its tables.
 * A migration is never edited once released: add a new number instead.
 */
import type { Migration } from "./migrations.ts";

/** Every connector migration, ascending by version. */
export const CONNECTOR_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "connector_init",
    sql: `
CREATE TABLE identity (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  fingerprint_hash TEXT NOT NULL,
  salt TEXT NOT NULL,
  iv TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  wg_public_key TEXT NOT NULL,
  signing_public_key TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE enrollment (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  device_id TEXT NOT NULL,
  api_url TEXT NOT NULL,
  ca_pem TEXT NOT NULL,
  details TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL
) STRICT;

CREATE TABLE policy (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version TEXT NOT NULL,
  etag TEXT,
  bundle TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts INTEGER NOT NULL,
  type TEXT NOT NULL,
  severity TEXT NOT NULL CHECK (severity IN ('info', 'warn', 'error')),
  message TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX notifications_type ON notifications (type, id);

CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
`,
  },
];
