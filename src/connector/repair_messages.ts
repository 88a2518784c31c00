/**
 * What a repair check says, as templates with {named} parameters: the
 * English sentence of the API and the log is rendered from here, and the
 * console shows the same reason in the page's language (web/i18n
 * `repair.reason.<reason>`, same parameters). One table, so the wording of a
 * finding lives in one place.
 */

/** English templates by reason. */
export const REPAIR_MESSAGES = {
  check_failed: "Cannot check this: {error}",
  tun_gone: 'Interface "{dev}" is gone',
  tun_set_up: 'Interface "{dev}" was down; set it up',
  tun_readdressed: 'Interface "{dev}" had lost address {address}; gave it back',
  tun_set_up_readdressed: 'Interface "{dev}" was down without address {address}; set it up with it',
  tun_ok: 'Interface "{dev}" is up with address {address}',
  tun_not_up: "The tunnel is not up, so no interface is installed",
  tun_rebuilt: 'Interface "{dev}" was gone; set the tunnel up again',
  routes_fail_mode: 'No tunnel routes while in fail mode "{mode}"',
  routes_none: "The policy routes nothing through the tunnel",
  routes_ok: "All {count} tunnel routes are in place",
  routes_failed: "{missing} of {count} tunnel routes were missing; cannot add {error}",
  routes_repaired: "Added {missing} missing tunnel route(s) of {count} again: {list}",
  routes_not_up: "The tunnel is not up, so no routes are installed",
  routes_rebuild_failed: "The tunnel could not be set up again",
  nft_none: "No table is needed and none is loaded",
  nft_stale: 'Removed a stale table "{table}"',
  nft_ok: 'Table "{table}" is loaded as applied',
  nft_missing: 'Table "{table}" was missing; loaded it again',
  nft_changed: 'Table "{table}" had changed (rules removed or edited); loaded it again',
  dns_left_alone: "resolv.conf is left alone",
  dns_ok: "{path} points at the split-DNS stub {stub}",
  dns_backup_rebuilt:
    "The saved original of {path} was gone; saved it again from the resolvers in use ({servers})",
  dns_repoint_failed: "Cannot point {path} at the split-DNS stub again",
  dns_repointed:
    "{path} no longer pointed at the split-DNS stub; pointed it back (the settings found there are restored on stop)",
  dns_not_managed: "The connector does not manage resolv.conf (--no-dns)",
  dns_restored: "Restored the original {path} a stopped run had left",
  dns_started: "Split DNS was not running; started it",
  dns_start_failed: "Cannot start split DNS (see the log)",
  dns_unused: "Split DNS is not in use; {path} is the system's own",
  ca_not_enrolled: "Not enrolled: no edge CA is trusted yet",
  ca_expired: "The pinned edge CA (SHA-256 {pin}…) expired on {date}; enrol again with a new key",
  ca_not_yet: "The pinned edge CA (SHA-256 {pin}…) is not valid before {date}; check the clock",
  ca_ok: "The pinned edge CA (SHA-256 {pin}…) is valid until {date}",
  ca_unreadable: "The pinned edge CA cannot be read ({error}); enrol again",
  db_ok: "The state database passes its integrity check",
  db_reindexed: "Rebuilt the indexes: {problems}",
  db_damaged:
    "The state database is damaged: {problems}; stop the connector and restore it from a backup",
  db_check_failed: "Cannot check the state database: {error}",
} as const;

/** Why a check came out as it did. */
export type RepairReason = keyof typeof REPAIR_MESSAGES;

/** Parameters of a reason's template. */
export type RepairParams = Record<string, string | number>;

/** Fills a template's {named} parameters (unknown names stay as written). */
export function fillTemplate(template: string, params: RepairParams): string {
  return template.replace(/\{([a-z]+)\}/g, (m, k: string) => (k in params ? String(params[k]) : m));
}
