/**
 * Numbered schema migrations, applied in order at open inside one
 * transaction (see db.ts). A migration is never edited once released: add a
 * new number instead, so every database walks the same path.
 *
 * Tables are STRICT so a wrong type is an error at the SQL layer too, and
 * every row that belongs to a device cascades on delete, so deleting a device
 * cannot leave a lease, a posture report or a registration behind.
 */

/** One numbered migration. */
export interface Migration {
  version: number;
  name: string;
  /** The common dialect (SQLite as written; translated for PostgreSQL by pg/translate.ts). */
  sql: string;
  /** PostgreSQL text, only where the translation cannot express the migration. */
  pg?: string;
}

/** Every migration this program knows, ascending by version. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "init",
    sql: `
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  totp_secret TEXT NOT NULL,
  totp_last_step INTEGER NOT NULL DEFAULT 0,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  groups TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  source_ip TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
) STRICT;

CREATE TABLE enrollment_keys (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL UNIQUE,
  reusable INTEGER NOT NULL CHECK (reusable IN (0, 1)),
  group_name TEXT,
  expires_at INTEGER,
  revoked_at INTEGER,
  used_at INTEGER,
  use_count INTEGER NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL UNIQUE,
  machine_id TEXT NOT NULL,
  macs TEXT NOT NULL,
  hostname TEXT NOT NULL,
  os TEXT NOT NULL,
  os_version TEXT NOT NULL,
  connector_version TEXT NOT NULL,
  wg_public_key TEXT NOT NULL UNIQUE,
  signing_public_key TEXT NOT NULL UNIQUE,
  credential_hash TEXT NOT NULL UNIQUE,
  group_name TEXT,
  user_name TEXT,
  enrollment_key_id TEXT REFERENCES enrollment_keys(id) ON DELETE SET NULL,
  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  enrolled_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_seen_at INTEGER,
  reported_state TEXT,
  reported_transport TEXT,
  clock_skew_ms INTEGER
) STRICT;

CREATE TABLE address_leases (
  host INTEGER PRIMARY KEY CHECK (host BETWEEN 2 AND 65534),
  device_id TEXT NOT NULL UNIQUE REFERENCES devices(id) ON DELETE CASCADE,
  leased_at INTEGER NOT NULL
) STRICT;

-- Hosts given back by deleted devices, reused lowest first; with MAX(host)+1
-- for fresh ones, allocation never scans the lease table.
CREATE TABLE address_free (
  host INTEGER PRIMARY KEY
) STRICT;
CREATE TRIGGER address_leases_release AFTER DELETE ON address_leases BEGIN
  INSERT OR IGNORE INTO address_free (host) VALUES (old.host);
END;

CREATE TABLE policy_objects (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  position INTEGER NOT NULL,
  body TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (kind, name)
) STRICT;

CREATE TABLE posture_reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  collected_at TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  passed INTEGER NOT NULL,
  body TEXT NOT NULL
) STRICT;
CREATE INDEX posture_reports_device ON posture_reports(device_id, id);

CREATE TABLE c2c_registrations (
  device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
  fqdn TEXT NOT NULL,
  valid INTEGER NOT NULL,
  reason TEXT NOT NULL,
  registered_at INTEGER NOT NULL
) STRICT;
CREATE INDEX c2c_registrations_fqdn ON c2c_registrations(fqdn);

CREATE TABLE notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  severity TEXT NOT NULL,
  message TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  read_at INTEGER
) STRICT;

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  detail TEXT NOT NULL
) STRICT;

CREATE TABLE support_requests (
  id TEXT PRIMARY KEY,
  device_id TEXT REFERENCES devices(id) ON DELETE SET NULL,
  hostname TEXT NOT NULL,
  message TEXT NOT NULL,
  bundle BLOB NOT NULL,
  bundle_sha256 TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
`,
  },
  {
    version: 2,
    name: "identity_providers",
    sql: `
-- Identity providers users sign in through (OIDC or SAML). Which one a user
-- meets is chosen by the domain of the address they type: each domain
-- belongs to at most one provider (the primary key says so), and at most
-- one provider is the default for every other domain (the partial unique
-- index). The OIDC client secret is sealed by the store's sealer; the SAML
-- IdP metadata is kept as imported, with the URL it came from when it did.
CREATE TABLE identity_providers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  kind TEXT NOT NULL CHECK (kind IN ('oidc', 'saml')),
  is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
  groups_claim TEXT NOT NULL,
  group_map TEXT NOT NULL DEFAULT '{}',
  oidc_issuer TEXT,
  oidc_client_id TEXT,
  oidc_client_secret TEXT,
  saml_metadata TEXT,
  saml_metadata_url TEXT,
  saml_entity_id TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX identity_providers_default ON identity_providers(is_default)
  WHERE is_default = 1;

CREATE TABLE identity_provider_domains (
  domain TEXT PRIMARY KEY COLLATE NOCASE,
  provider_id TEXT NOT NULL REFERENCES identity_providers(id) ON DELETE CASCADE
) STRICT;
CREATE INDEX identity_provider_domains_provider ON identity_provider_domains(provider_id);

-- Users who signed in through a provider: their address, the groups the
-- provider gave at the last sign-in (local groups stay in users.groups),
-- and a disabled flag that ends every sign-in and tunnel of theirs. Their
-- password hash is "!", which no password verifies.
ALTER TABLE users ADD COLUMN provider_id TEXT REFERENCES identity_providers(id) ON DELETE SET NULL;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN idp_groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
ALTER TABLE users ADD COLUMN last_sign_in_at INTEGER;

-- A user's sign-in on a device (or, before enrolment, for one): the
-- connector holds the token, only its hash is kept; it lapses at
-- expires_at (the profile's re-authentication interval).
CREATE TABLE user_signins (
  token_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  provider_id TEXT,
  method TEXT NOT NULL CHECK (method IN ('oidc_code', 'oidc_device', 'saml', 'local')),
  device_id TEXT REFERENCES devices(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX user_signins_user ON user_signins(user_id);

-- A machine key pre-authorises a gateway box: its devices enrol without a
-- user ("machine" devices in the key's group). A user key enrols only with
-- a signed-in user. Keys made before this migration stay machine keys.
ALTER TABLE enrollment_keys ADD COLUMN machine INTEGER NOT NULL DEFAULT 1 CHECK (machine IN (0, 1));
CREATE INDEX user_signins_device ON user_signins(device_id);
`,
  },
  {
    version: 3,
    name: "access_decisions",
    sql: `
-- The access decision log: one row per decided flow to a private
-- destination (allowed or denied), with the rule and the reason. Device
-- name and user are copied, so the log still reads after a device is
-- deleted; retention is bounded by the writer (rows and age).
CREATE TABLE access_decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  device_id TEXT NOT NULL,
  device_name TEXT NOT NULL,
  user_name TEXT,
  src TEXT NOT NULL,
  dst TEXT NOT NULL,
  port INTEGER NOT NULL,
  protocol TEXT NOT NULL,
  dst_name TEXT,
  verdict TEXT NOT NULL CHECK (verdict IN ('allow', 'deny')),
  rule TEXT,
  segments TEXT NOT NULL,
  reason TEXT NOT NULL
) STRICT;
CREATE INDEX access_decisions_at ON access_decisions(at);
CREATE INDEX access_decisions_device ON access_decisions(device_id, id);
`,
  },
  {
    version: 4,
    name: "posture_results",
    sql: `
-- The edge's own evaluation of each device's latest signed posture report:
-- one row per profile and check, expected vs actual, so a failure explains
-- itself in the console and the decision log. Replaced whole on every
-- evaluation; the report itself stays in posture_reports.
CREATE TABLE posture_results (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  profile TEXT NOT NULL,
  check_name TEXT NOT NULL,
  position INTEGER NOT NULL,
  passed INTEGER NOT NULL,
  expected TEXT NOT NULL,
  actual TEXT NOT NULL,
  evaluated_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, profile, position)
) STRICT;
`,
  },
  {
    version: 5,
    name: "dlp",
    sql: `
-- DLP dictionaries: the admin's definition as JSON; an EDM dictionary also
-- has its index (hashes of the uploaded CSV's cells, never the cells) and
-- the HMAC key, sealed like other secrets at rest.
CREATE TABLE dlp_dictionaries (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  def TEXT NOT NULL,
  edm_index TEXT,
  edm_key TEXT,
  edm_uploaded_at INTEGER,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE dlp_rules (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  body TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

-- What a connector (or the inline proxy) found and did. Matches hold
-- dictionary, count and redacted samples only. report_id is the reporter's
-- own id of the event, so a report sent twice is stored once.
CREATE TABLE dlp_incidents (
  id TEXT PRIMARY KEY,
  report_id TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  device_id TEXT REFERENCES devices(id) ON DELETE SET NULL,
  hostname TEXT NOT NULL,
  user_name TEXT,
  channel TEXT NOT NULL,
  file_name TEXT NOT NULL,
  file_sha256 TEXT NOT NULL,
  file_size INTEGER NOT NULL,
  file_type TEXT NOT NULL,
  rule TEXT,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL,
  matches TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX dlp_incidents_received ON dlp_incidents(received_at);
CREATE INDEX dlp_incidents_device ON dlp_incidents(device_id);
`,
  },
  {
    version: 6,
    name: "saas_tenants",
    sql: `
-- Microsoft SaaS tenants (src/saas). The client secret and the SharePoint
-- private key are sealed like the TOTP seeds; the certificate is public.
-- validation holds the last check's grants per API and what was missing.
CREATE TABLE saas_tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  app TEXT NOT NULL CHECK (app IN ('exchange', 'mip', 'onedrive', 'sharepoint', 'azure_blob', 'teams')),
  tenant_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  client_secret TEXT NOT NULL,
  secret_expires_at INTEGER,
  private_key TEXT,
  certificate TEXT,
  cert_thumbprint TEXT,
  cert_subject TEXT,
  cert_not_after INTEGER,
  status TEXT NOT NULL CHECK (status IN ('successful', 'failed')),
  validation TEXT NOT NULL,
  validated_at INTEGER NOT NULL,
  consent_id TEXT,
  remediation TEXT NOT NULL,
  -- Minutes between scheduled scans; 0: scans run only when an admin starts one.
  scan_interval_min INTEGER NOT NULL DEFAULT 0 CHECK (scan_interval_min BETWEEN 0 AND 10080),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

-- Admin-consent requests: the state's SHA-256 (never the state), what is
-- being added, and the answer of the redirect once it came back.
CREATE TABLE saas_consents (
  id TEXT PRIMARY KEY,
  state_hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  app TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  result TEXT CHECK (result IN ('granted', 'denied')),
  result_at INTEGER,
  error TEXT,
  consented_tenant TEXT
) STRICT;

CREATE TABLE saas_scans (
  id TEXT PRIMARY KEY,
  tenant_ref TEXT NOT NULL REFERENCES saas_tenants(id) ON DELETE CASCADE,
  state TEXT NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
  started_by TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  drives INTEGER NOT NULL DEFAULT 0,
  pages INTEGER NOT NULL DEFAULT 0,
  files_seen INTEGER NOT NULL DEFAULT 0,
  files_scanned INTEGER NOT NULL DEFAULT 0,
  findings INTEGER NOT NULL DEFAULT 0,
  remediations INTEGER NOT NULL DEFAULT 0,
  throttled INTEGER NOT NULL DEFAULT 0,
  error TEXT
) STRICT;
CREATE INDEX saas_scans_tenant ON saas_scans(tenant_ref, started_at);

-- One row per scanned drive: where its delta query stands.
CREATE TABLE saas_drives (
  tenant_ref TEXT NOT NULL REFERENCES saas_tenants(id) ON DELETE CASCADE,
  drive_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  cursor TEXT NOT NULL,
  cursor_kind TEXT NOT NULL CHECK (cursor_kind IN ('next', 'delta')),
  quarantine_folder_id TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_ref, drive_id)
) STRICT;

-- Every file scanned, with the content tag it had: a file is downloaded
-- again only when its content changed.
CREATE TABLE saas_items (
  tenant_ref TEXT NOT NULL REFERENCES saas_tenants(id) ON DELETE CASCADE,
  drive_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  ctag TEXT NOT NULL,
  verdict TEXT NOT NULL,
  scanned_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_ref, drive_id, item_id)
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 7,
    name: "zdx_results",
    sql: `
-- Digital-experience probe results sent by connectors in batches (src/zdx),
-- each scored by the edge against that device's and probe's own history.
-- phases is the JSON of the measured phases (NULL when the probe failed).
CREATE TABLE zdx_results (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  probe TEXT NOT NULL,
  url TEXT NOT NULL,
  at INTEGER NOT NULL,
  ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
  status INTEGER,
  phases TEXT,
  edge_rtt_ms REAL,
  score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100),
  z REAL,
  worst_hop TEXT,
  received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX zdx_results_device_probe ON zdx_results(device_id, probe, at);
CREATE INDEX zdx_results_at ON zdx_results(at);
`,
  },
  {
    version: 8,
    name: "web_proxy",
    sql: `
-- The edge forward proxy's web log (src/proxy): one row per request or
-- TLS connection it decided, with who sent it (device and user at the time),
-- what it asked for, the action and the rule, and the bytes each way.
-- Paths are stored without their query string (queries carry tokens).
CREATE TABLE web_log (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  device_id TEXT,
  device_name TEXT,
  user_name TEXT,
  src TEXT NOT NULL,
  mode TEXT NOT NULL CHECK (mode IN ('explicit', 'connect', 'transparent', 'inspected')),
  method TEXT,
  scheme TEXT NOT NULL CHECK (scheme IN ('http', 'https')),
  host TEXT NOT NULL,
  port INTEGER NOT NULL,
  path TEXT,
  categories TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('allow', 'block', 'caution', 'allow_log')),
  rule TEXT,
  reason TEXT NOT NULL,
  status INTEGER,
  bytes_up INTEGER NOT NULL,
  bytes_down INTEGER NOT NULL
) STRICT;
CREATE INDEX web_log_at ON web_log(at);
CREATE INDEX web_log_host ON web_log(host);
CREATE INDEX web_log_user ON web_log(user_name);
`,
  },
  {
    version: 10,
    name: "signin_state",
    sql: `
-- What the sign-in flows keep between two requests, so an edge restart
-- neither breaks a sign-in in progress nor re-opens a replay window:
-- pending OIDC code flows (state, nonce, PKCE verifier) and SAML requests
-- (RelayState), one-time grants, the AuthnRequest IDs the SAML service
-- provider issued, and the assertion IDs it accepted. Keyed by kind and
-- key; every row lapses at expires_at and is purged; each kind is bounded
-- (the oldest go first). Bodies are sealed (secret_box) where they hold
-- secrets.
CREATE TABLE signin_state (
  kind TEXT NOT NULL CHECK (kind IN ('oidc', 'saml', 'grant', 'saml_request', 'saml_assertion')),
  key TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
) STRICT;
CREATE INDEX signin_state_expires ON signin_state(expires_at);
CREATE INDEX signin_state_age ON signin_state(kind, created_at);
`,
  },
  {
    version: 12,
    name: "edges",
    sql: `
-- The edge registry (src/fleet/edge_registry.ts): every edge sharing this
-- database registers itself at start and heartbeats; the policy bundle lists
-- the healthy ones so connectors can pick the nearest. id is derived from the
-- edge's WireGuard public key (stable for its data directory); endpoints is
-- the JSON of its tunnel endpoints. status is 'up' while it heartbeats,
-- 'unhealthy' once another edge saw its heartbeat lapse, 'stopped' after a
-- clean shutdown. devices_connected is what its own tunnel counted at its
-- last heartbeat (no other edge can see its peers).
CREATE TABLE edges (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  region TEXT NOT NULL DEFAULT '',
  wg_public_key TEXT NOT NULL UNIQUE,
  endpoints TEXT NOT NULL,
  api_url TEXT NOT NULL,
  bootstrap_url TEXT NOT NULL,
  ca_pem TEXT NOT NULL,
  version TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('up', 'unhealthy', 'stopped')),
  devices_connected INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The change feed between edges on one database (polled; replaced by
-- LISTEN/NOTIFY and dropped in migration 14):
-- each message is a row, every edge reads the rows after the last it saw,
-- and rows older than a few minutes are pruned. Written inside the writer's
-- transaction, so a message goes out only with the change it announces.
CREATE TABLE feed_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL,
  payload TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;
CREATE INDEX feed_log_at ON feed_log(at);
`,
  },
  {
    version: 13,
    name: "releases",
    sql: `
-- Connector releases and update rules (src/fleet/releases.ts). A release is
-- its signed manifest (the exact text the operator's release key signed,
-- src/fleet/release.ts) with the fields it names; the program's bytes are a
-- file in the data directory of the edge it was uploaded to, named by its
-- SHA-256. Connectors verify the signature themselves: the edge checks only
-- that the bytes match the manifest.
CREATE TABLE releases (
  version TEXT PRIMARY KEY,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  signed_manifest TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  uploaded_by TEXT NOT NULL
) STRICT;

-- Update rules, tried by position: the first whose group (NULL: every
-- device) takes a device decides; percent of its devices (stable ranking,
-- src/policy/rollout.ts) are offered target_version unless paused;
-- rollback allows a target older than what a device runs.
CREATE TABLE update_rules (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  group_name TEXT,
  percent INTEGER NOT NULL CHECK (percent BETWEEN 0 AND 100),
  target_version TEXT NOT NULL REFERENCES releases(version),
  paused INTEGER NOT NULL DEFAULT 0,
  rollback INTEGER NOT NULL DEFAULT 0,
  position INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

-- What each device last said about an update: installed, rolled back
-- (unhealthy), or refused (bad signature, digest, downgrade), with why.
CREATE TABLE update_reports (
  device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
  version TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('installed', 'rolled_back', 'refused', 'failed')),
  reason TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;
`,
  },
  {
    version: 14,
    name: "drop_feed_log",
    sql: `
-- The change feed between edges now runs over PostgreSQL's LISTEN/NOTIFY
-- (src/store/pg/notify_feed.ts) and stays in the process on SQLite, where a
-- file belongs to one edge: nothing reads the polled table any more.
DROP INDEX IF EXISTS feed_log_at;
DROP TABLE IF EXISTS feed_log;
`,
  },
  {
    version: 15,
    name: "fleet_secrets",
    sql: `
-- The fleet's shared keys (src/store/repos/fleet_secrets.ts), so a further
-- edge joins with the database URL and the operator's fleet join key alone:
-- the data-sealing key wrapped under the join key (AES-256-GCM under an
-- HKDF-derived key), the CA certificate, and the CA key sealed with the
-- data-sealing key. One row, stored by the first edge.
CREATE TABLE fleet_secrets (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  join_key_id TEXT NOT NULL,
  sealing_key_id TEXT NOT NULL,
  sealing_key TEXT NOT NULL,
  ca_cert_pem TEXT NOT NULL,
  ca_key_sealed TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL
) STRICT;
`,
  },
  {
    version: 16,
    name: "device_locations",
    sql: `
-- Where each device's tunnel terminates now (src/fleet/mesh.ts): the edge
-- that saw its latest handshake, and when. Every edge writes a row when a
-- device completes a handshake with it, and only if that handshake is newer
-- than the one recorded, so after a failover the edge the device moved to
-- holds the row and a late write from the old edge cannot take it back.
-- Other edges route device-to-device traffic to that edge over the mesh.
CREATE TABLE device_locations (
  device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
  edge_id TEXT NOT NULL,
  handshake_at INTEGER NOT NULL
) STRICT;
CREATE INDEX device_locations_edge ON device_locations(edge_id);
`,
  },
  {
    version: 17,
    name: "rollback_authorisations_release_chunks",
    sql: `
-- A rollback rule carries the release key holder's signed permission to go
-- back to its target (src/fleet/rollback_auth.ts), exactly as uploaded: the
-- edge sends it with the offer and the connector verifies it against its
-- pinned key, so the rule's flag alone no longer allows a downgrade.
ALTER TABLE update_rules ADD COLUMN rollback_auth TEXT;

-- A release's program bytes, in the shared store so every edge of a fleet
-- serves every release (they lived in the uploading edge's data directory):
-- chunks of at most 1 MiB numbered from 0, keyed by the program's SHA-256
-- (releases with the same program share them), read one at a time while
-- serving so a large program never sits whole in memory.
CREATE TABLE release_chunks (
  sha256 TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (sha256, seq)
) STRICT;
`,
  },
  {
    version: 18,
    name: "fleet_inspection_ca",
    sql: `
-- The fleet's SSL inspection CA (src/edge/fleet_inspection_ca.ts), so every
-- edge on a shared database issues leaves under one root and a connector
-- that moves between edges keeps trusting what it installed: the certificate
-- and the private key sealed with the fleet's data-sealing key. One row,
-- stored by the first edge that starts after this migration (an upgraded
-- edge's own CA becomes the fleet's).
CREATE TABLE fleet_inspection_ca (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  cert_pem TEXT NOT NULL,
  cert_sha256 TEXT NOT NULL,
  key_sealed TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL
) STRICT;
`,
  },
  {
    version: 19,
    name: "log_table_ids",
    // SQLite fills an INTEGER PRIMARY KEY left out of an INSERT by itself.
    sql: "-- nothing to do: SQLite assigns rowids",
    // On PostgreSQL web_log.id and zdx_results.id came out of the translation
    // as plain BIGINT keys with no default, so every insert of a fleet on a
    // shared database failed: the web log and ZDX results were lost. The
    // translation now makes them identity columns; databases made before get
    // one here, starting past any row they hold.
    pg: `
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['web_log', 'zdx_results'] LOOP
    IF NOT EXISTS (
      SELECT 1 FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = t AND column_name = 'id'
        AND is_identity = 'YES'
    ) THEN
      EXECUTE format('ALTER TABLE %I ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY', t);
      EXECUTE format(
        'SELECT setval(pg_get_serial_sequence(%L, ''id''), COALESCE((SELECT MAX(id) FROM %I), 0) + 1, false)',
        t, t);
    END IF;
  END LOOP;
END $$;
`,
  },
  {
    version: 20,
    name: "web_log_indexes",
    sql: `
-- The web log's host and user indexes served no query: the console searches
-- a substring of the host (instr) and the user case-insensitively, which
-- neither index can answer, and every request the proxy logs paid for both
-- (with the pruning, 21 µs a row on SQLite against 10 without them).
DROP INDEX web_log_host;
DROP INDEX web_log_user;
`,
  },
];
