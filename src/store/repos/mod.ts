/**
 * Typed repositories over the edge database, one per file. Each maps
 * snake_case rows to camelCase records and back; SQL stays in these files so
 * the rest of the program never builds a query string. Every value is bound
 * as a parameter, never interpolated, so SQL metacharacters in input are
 * just characters.
 */
export * from "./settings.ts";
export * from "./users.ts";
export * from "./sessions.ts";
export * from "./api_tokens.ts";
export * from "./enrollment_keys.ts";
export * from "./devices.ts";
export * from "./leases.ts";
export * from "./policy.ts";
export * from "./posture.ts";
export * from "./c2c.ts";
export * from "./notifications.ts";
export * from "./audit.ts";
export * from "./support.ts";
export * from "./dlp_dictionaries.ts";
export * from "./dlp_rules.ts";
export * from "./dlp_incidents.ts";
export * from "./decisions.ts";
export * from "./web_log.ts";
export * from "./saas_tenants.ts";
export * from "./saas_consents.ts";
export * from "./saas_scans.ts";
export * from "./saas_drives.ts";
export * from "./saas_items.ts";
export * from "./zdx.ts";
export * from "./identity_providers.ts";
export * from "./user_signins.ts";
export * from "./edges.ts";
export * from "./device_locations.ts";
export * from "./releases.ts";
export * from "./fleet_secrets.ts";
