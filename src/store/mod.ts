/**
 * The store: one SQLite database per role instance, opened with WAL and
 * foreign keys, migrated at open, with typed repositories over it. The only
 * module that touches `node:sqlite` (through db.ts).
 */
import { SignInStateRepo } from "./repos/signin_state.ts";
import { Database, type OpenOptions } from "./db.ts";
import { type ChangeFeed, LocalFeed } from "./feed.ts";
import { MIGRATIONS } from "./migrations.ts";
import { PgDatabase } from "./pg/database.ts";
import { PgNotifyFeed } from "./pg/notify_feed.ts";
import type { SqlDatabase } from "./sql.ts";
import {
  ApiTokensRepo,
  AuditRepo,
  C2cRepo,
  DecisionsRepo,
  DeviceLocationsRepo,
  DevicesRepo,
  DlpDictionariesRepo,
  DlpIncidentsRepo,
  DlpRulesRepo,
  EdgesRepo,
  EnrollmentKeysRepo,
  FleetSecretsRepo,
  IdentityProvidersRepo,
  LeasesRepo,
  NotificationsRepo,
  PolicyRepo,
  PostureRepo,
  ReleasesRepo,
  SaasConsentsRepo,
  SaasDrivesRepo,
  SaasItemsRepo,
  SaasScansRepo,
  SaasTenantsRepo,
  type Sealer,
  SessionsRepo,
  SettingsRepo,
  SupportRepo,
  UserSignInsRepo,
  UsersRepo,
  WebLogRepo,
  ZdxRepo,
} from "./repos/mod.ts";
export type { SignInStateKind } from "./repos/signin_state.ts";

export { Database, type OpenOptions, type SqlValue, StoreError } from "./db.ts";
export type { RunResult, SqlDatabase } from "./sql.ts";
export { PgDatabase } from "./pg/database.ts";
export { type ChangeFeed, LocalFeed, MAX_PAYLOAD } from "./feed.ts";
export { PgNotifyFeed } from "./pg/notify_feed.ts";
export { type Migration, MIGRATIONS } from "./migrations.ts";
export type {
  ApiTokenRecord,
  AuditRecord,
  C2cRecord,
  DecisionFilter,
  DecisionRecord,
  DeviceRecord,
  DlpDictionaryRecord,
  DlpIncidentRecord,
  EdgeRecord,
  EdgeStatus,
  EnrollmentKeyRecord,
  FleetSecretsRecord,
  IdentityProviderRecord,
  IncidentFilter,
  NewUser,
  NotificationRecord,
  PolicyKind,
  PostureRecord,
  ReleaseRecord,
  SaasConsentRecord,
  SaasDriveRecord,
  SaasScanRecord,
  SaasTenantRecord,
  ScanCounter,
  SessionRecord,
  SignInMethod,
  SupportRecord,
  UpdateReportRecord,
  UpdateRuleRecord,
  UserRecord,
  UserSignInRecord,
  WebLogFilter,
  WebLogRecord,
} from "./repos/mod.ts";

/** Tables whose row counts `Store.tableCounts` reports. */
export const TABLES = [
  "settings",
  "users",
  "sessions",
  "api_tokens",
  "enrollment_keys",
  "devices",
  "address_leases",
  "address_free",
  "policy_objects",
  "posture_reports",
  "posture_results",
  "c2c_registrations",
  "notifications",
  "zdx_results",
  "audit_log",
  "support_requests",
  "dlp_dictionaries",
  "dlp_rules",
  "dlp_incidents",
  "access_decisions",
  "saas_tenants",
  "saas_consents",
  "saas_scans",
  "saas_drives",
  "saas_items",
  "web_log",
  "identity_providers",
  "identity_provider_domains",
  "user_signins",
  "edges",
  "device_locations",
  "releases",
  "update_rules",
  "update_reports",
  "fleet_secrets",
  "fleet_inspection_ca",
] as const;

/** The edge database with its repositories. */
export class Store {
  /** Key/value settings. */
  readonly settings: SettingsRepo;
  /** Users. */
  readonly users: UsersRepo;
  /** Console sessions. */
  readonly sessions: SessionsRepo;
  /** Admin API tokens. */
  readonly apiTokens: ApiTokensRepo;
  /** Enrolment keys. */
  readonly enrollmentKeys: EnrollmentKeysRepo;
  /** Devices. */
  readonly devices: DevicesRepo;
  /** Address leases. */
  readonly leases: LeasesRepo;
  /** Policy objects. */
  readonly policy: PolicyRepo;
  /** Posture reports. */
  readonly posture: PostureRepo;
  /** Digital-experience results (migration 7). */
  readonly zdx: ZdxRepo;
  /** Client-to-client registrations. */
  readonly c2c: C2cRepo;
  /** Notifications. */
  readonly notifications: NotificationsRepo;
  /** Audit log. */
  readonly audit: AuditRepo;
  /** Support requests. */
  readonly support: SupportRepo;
  /** DLP dictionaries (EDM keys sealed). */
  readonly dlpDictionaries: DlpDictionariesRepo;
  /** DLP rules. */
  readonly dlpRules: DlpRulesRepo;
  /** DLP incidents. */
  readonly dlpIncidents: DlpIncidentsRepo;
  /** The access decision log. */
  readonly decisions: DecisionsRepo;
  /** SaaS tenants (client secrets and private keys sealed). */
  readonly saasTenants: SaasTenantsRepo;
  /** Admin-consent requests of SaaS tenants. */
  readonly saasConsents: SaasConsentsRepo;
  /** Data-at-rest scans. */
  readonly saasScans: SaasScansRepo;
  /** Delta cursors of scanned drives. */
  readonly saasDrives: SaasDrivesRepo;
  /** Scanned files and their content tags. */
  readonly saasItems: SaasItemsRepo;
  /** The web proxy's request log. */
  readonly webLog: WebLogRepo;
  /** Identity providers (OIDC client secrets sealed) and their domains. */
  readonly identityProviders: IdentityProvidersRepo;
  /** Users' sign-ins on devices (token hashes). */
  readonly userSignIns: UserSignInsRepo;
  /** Sign-in flows in progress, grants, SAML request and assertion IDs (sealed, lapsing). */
  readonly signInState: SignInStateRepo;
  /** The edges sharing this database, their endpoints and heartbeats (migration 12). */
  readonly edges: EdgesRepo;
  /** Which edge each device's tunnel terminates on now (migration 16; the edge mesh). */
  readonly deviceLocations: DeviceLocationsRepo;
  /** Connector releases, update rules and devices' update reports (migration 13). */
  readonly releases: ReleasesRepo;
  /** The fleet's shared CA and wrapped sealing key (migration 15). */
  readonly fleetSecrets: FleetSecretsRepo;

  /**
   * Tells every edge sharing this database what changed (LISTEN/NOTIFY on
   * PostgreSQL; in-process on SQLite, where this edge is the only one).
   */
  readonly feed: ChangeFeed;

  constructor(readonly db: SqlDatabase, sealer?: Sealer, feed: ChangeFeed = new LocalFeed()) {
    this.feed = feed;
    this.settings = new SettingsRepo(db);
    this.users = new UsersRepo(db, sealer);
    this.sessions = new SessionsRepo(db);
    this.apiTokens = new ApiTokensRepo(db);
    this.enrollmentKeys = new EnrollmentKeysRepo(db);
    this.devices = new DevicesRepo(db);
    this.leases = new LeasesRepo(db);
    this.policy = new PolicyRepo(db);
    this.posture = new PostureRepo(db);
    this.zdx = new ZdxRepo(db);
    this.c2c = new C2cRepo(db);
    this.notifications = new NotificationsRepo(db);
    this.audit = new AuditRepo(db);
    this.support = new SupportRepo(db);
    this.dlpDictionaries = new DlpDictionariesRepo(db, sealer);
    this.dlpRules = new DlpRulesRepo(db);
    this.dlpIncidents = new DlpIncidentsRepo(db);
    this.decisions = new DecisionsRepo(db);
    this.saasTenants = new SaasTenantsRepo(db, sealer);
    this.saasConsents = new SaasConsentsRepo(db);
    this.saasScans = new SaasScansRepo(db);
    this.saasDrives = new SaasDrivesRepo(db);
    this.saasItems = new SaasItemsRepo(db);
    this.webLog = new WebLogRepo(db);
    this.identityProviders = new IdentityProvidersRepo(db, sealer);
    this.userSignIns = new UserSignInsRepo(db);
    this.signInState = new SignInStateRepo(db, sealer);
    this.edges = new EdgesRepo(db);
    this.deviceLocations = new DeviceLocationsRepo(db);
    this.releases = new ReleasesRepo(db);
    this.fleetSecrets = new FleetSecretsRepo(db);
  }

  /** Runs `fn` in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn);
  }

  /** Row count of every table: tests use it to prove nothing was half-written. */
  tableCounts(): Record<(typeof TABLES)[number], number> {
    const out = {} as Record<(typeof TABLES)[number], number>;
    for (const t of TABLES) {
      out[t] = Number(this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t}`)!.n);
    }
    return out;
  }

  /** Closes the database; resolves once the feed's own connection is closed too. */
  close(): Promise<void> {
    const feed = this.feed.close();
    this.db.close();
    return feed;
  }
}

/** True for a PostgreSQL URL (postgres:// or postgresql://). */
export function isPostgresUrl(path: string): boolean {
  return /^postgres(ql)?:\/\//i.test(path);
}

/**
 * Opens (creating and migrating) the store at `path`: a SQLite file,
 * ":memory:" (the test fake), or a postgres:// URL shared by several edges.
 */
export function openStore(
  path: string,
  opts: OpenOptions & { sealer?: Sealer; application?: string } = {},
): Store {
  const { sealer, application, ...dbOpts } = opts;
  if (isPostgresUrl(path)) {
    const app = application ?? "portcullis";
    const db = PgDatabase.open(path, {
      migrations: dbOpts.migrations ?? MIGRATIONS,
      application: app,
    });
    // Several edges share this database: LISTEN/NOTIFY carries their change feed.
    return new Store(db, sealer, new PgNotifyFeed(db, path, { application: `${app} feed` }));
  }
  // An SQLite file belongs to one edge process: its feed stays in that process.
  return new Store(Database.open(path, dbOpts), sealer);
}
