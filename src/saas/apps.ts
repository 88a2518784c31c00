/**
 * The Microsoft applications a SaaS tenant can connect, the APIs they call
 * and the permission tables of the custom-connector guide
 * (shared/reference/004: "API Permissions for Microsoft Applications"),
 * kept as data: per application, each row is the API, the permission as
 * the guide spells it, its type, and the actions the guide says it enables
 * (the guide's own wording in `reference`, our action keys in `actions`).
 *
 * Validation (permissions.ts) compares the roles a token carries with
 * these rows; a missing row disables every action it lists, and the scanner
 * (drive_scan.ts) runs an action only while it is enabled. Nothing here is
 * read for display only.
 */

/** The applications a tenant can be added for. */
export const SAAS_APPS = [
  "exchange",
  "mip",
  "onedrive",
  "sharepoint",
  "azure_blob",
  "teams",
] as const;
/** One of SAAS_APPS. */
export type SaasApp = typeof SAAS_APPS[number];

/** True when `v` names an application. */
export function isSaasApp(v: unknown): v is SaasApp {
  return typeof v === "string" && (SAAS_APPS as readonly string[]).includes(v);
}

/** Applications whose files are scanned at rest (Graph drives). */
export const SCANNABLE_APPS: readonly SaasApp[] = ["onedrive", "sharepoint"];

/** A Microsoft API a connector needs a token for. */
export interface ApiResource {
  /** The name the guide and the Entra portal use. */
  name: string;
  /** The API's application (client) ID in every Entra tenant. */
  appId: string;
  /** The client-credentials scope: the API's identifier URI (or app ID) with "/.default". */
  scope: string;
}

/** The APIs of the guide's tables. */
export const APIS = {
  graph: {
    name: "Microsoft Graph",
    appId: "00000003-0000-0000-c000-000000000000",
    scope: "https://graph.microsoft.com/.default",
  },
  o365_management: {
    name: "Office 365 Management APIs",
    appId: "c5393580-f805-4401-95e8-94b7a6ef2fc2",
    scope: "https://manage.office.com/.default",
  },
  azure_storage: {
    name: "Azure Storage",
    appId: "e406a681-f3d4-42a8-90b6-c2b029497af1",
    scope: "https://storage.azure.com/.default",
  },
  azure_service_management: {
    name: "Windows Azure Service Management",
    appId: "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    scope: "https://management.azure.com/.default",
  },
  mip_sync: {
    name: "Microsoft Information Protection Sync Service",
    appId: "870c4f2e-85b6-4d43-bdda-6ed9a579b725",
    scope: "870c4f2e-85b6-4d43-bdda-6ed9a579b725/.default",
  },
  rms: {
    name: "Microsoft Rights Management Services",
    appId: "00000012-0000-0000-c000-000000000000",
    scope: "https://aadrm.com/.default",
  },
} as const satisfies Record<string, ApiResource>;
/** One of the APIs' keys. */
export type ApiKey = keyof typeof APIS;

/** The product actions a permission can enable. */
export const SAAS_ACTIONS = [
  "scanning",
  "quarantine",
  "remove_sharing",
  "restore_quarantined_file",
  "remove_external_collaborators",
  "remove_external_collaborators_and_link",
  "remove_public_link",
  "remove_internal_link",
  "quarantine_to_user_root",
  "remove_file",
  "apply_email_tag_label",
  "apply_mip_labels",
  "discover_storage_account",
  "block_message",
  "notify_user",
  "notify_user_workflow",
] as const;
/** One of SAAS_ACTIONS. */
export type SaasAction = typeof SAAS_ACTIONS[number];

/**
 * The guide's action wording, mapped to our action keys. "Scanning and
 * Quarantine" (Files.ReadWrite.All for OneDrive) is one entry in the guide
 * that enables two of our actions.
 */
export const REFERENCE_ACTIONS: Record<string, readonly SaasAction[]> = {
  "Scanning": ["scanning"],
  "Quarantine": ["quarantine"],
  "Scanning and Quarantine": ["scanning", "quarantine"],
  "Remove Sharing": ["remove_sharing"],
  "Restore Quarantined File": ["restore_quarantined_file"],
  "Remove External Collaborators": ["remove_external_collaborators"],
  "Remove External Collaborators and Shareable Link": ["remove_external_collaborators_and_link"],
  "Remove Public Shareable Link": ["remove_public_link"],
  "Remove Internal Shareable Link": ["remove_internal_link"],
  "Quarantine to User Root Folder": ["quarantine_to_user_root"],
  "Remove File": ["remove_file"],
  "Apply Email Tag Label": ["apply_email_tag_label"],
  "Apply MIP Labels to File": ["apply_mip_labels"],
  "Discover Storage Account": ["discover_storage_account"],
  "Block Message": ["block_message"],
  "Notify User": ["notify_user"],
  "Notify User (ZscalerWorkflow Automation)": ["notify_user_workflow"],
};

/**
 * How a permission is granted. The guide adds every permission as an
 * application permission (its step 2, "Click Application permissions");
 * Entra offers user_impersonation of Azure Storage and Windows Azure Service
 * Management only as a delegated permission, so those two rows say so.
 * Application permissions arrive in a client-credentials token's `roles`
 * claim; a delegated one is checked in `scp` when the token carries one,
 * and otherwise counts as granted when the API issues the token at all
 * (app-only tokens carry no `scp`; the guide's RBAC role assignments then
 * decide access).
 */
export type PermissionType = "Application" | "Delegated";

/** One row of a permission table. */
export interface PermissionRow {
  api: ApiKey;
  permission: string;
  type: PermissionType;
  /** The guide's "Associated Actions" for this row, in its own words. */
  reference: readonly string[];
}

const SITES_READWRITE_ACTIONS = [
  "Remove Sharing",
  "Restore Quarantined File",
  "Remove External Collaborators",
  "Remove External Collaborators and Shareable Link",
  "Remove Public Shareable Link",
  "Remove Internal Shareable Link",
  "Quarantine",
  "Quarantine to User Root Folder",
  "Remove File",
] as const;

const app = (api: ApiKey, permission: string, ...reference: string[]): PermissionRow => ({
  api,
  permission,
  type: "Application",
  reference,
});

/** The guide's tables, per application, in the guide's order. */
export const REFERENCE_TABLES: Record<SaasApp, readonly PermissionRow[]> = {
  exchange: [
    app("graph", "Mail.ReadWrite", "Apply Email Tag Label"),
    app("graph", "MailboxSettings.Read", "Scanning"),
    app("graph", "Directory.Read.All", "Scanning"),
    app("graph", "User.Read.All", "Scanning"),
    app("graph", "Mail.Send", "Quarantine"),
    app("graph", "Organization.Read.All", "Scanning"),
    app("graph", "AuditLog.Read.All", "Scanning"),
    app("graph", "Member.Read.Hidden", "Scanning"),
    app("graph", "Reports.Read.All", "Scanning"),
  ],
  azure_blob: [
    {
      api: "azure_storage",
      permission: "user_impersonation",
      type: "Delegated",
      reference: ["Discover Storage Account", "Scanning"],
    },
    {
      api: "azure_service_management",
      permission: "user_impersonation",
      type: "Delegated",
      reference: ["Discover Storage Account", "Scanning"],
    },
  ],
  mip: [
    app("graph", "InformationProtectionPolicy.Read.All", "Scanning"),
    app("mip_sync", "UnifiedPolicy.Tenant.Read", "Scanning"),
    app("rms", "Content.DelegatedWriter", "Apply MIP Labels to File"),
    app("rms", "Content.Writer", "Apply MIP Labels to File"),
    app("rms", "Content.SuperUser", "Scanning"),
    app("rms", "Content.DelegatedReader", "Scanning"),
  ],
  onedrive: [
    app("o365_management", "ActivityFeed.Read", "Scanning"),
    app("graph", "People.Read.All", "Scanning"),
    app("graph", "Group.Read.All", "Scanning"),
    app("graph", "Sites.Manage.All", "Scanning"),
    app("graph", "Sites.ReadWrite.All", ...SITES_READWRITE_ACTIONS),
    app(
      "graph",
      "Files.ReadWrite.All",
      "Scanning and Quarantine",
      "Quarantine to User Root Folder",
    ),
    app("graph", "Directory.Read.All", "Scanning"),
    app("graph", "GroupMember.Read.All", "Scanning"),
    app("graph", "Organization.Read.All", "Scanning"),
    app("graph", "AuditLog.Read.All", "Scanning"),
    app("graph", "Application.Read.All", "Scanning"),
    app("graph", "Reports.Read.All", "Scanning"),
  ],
  // The guide's SharePoint section has no rows (see requirementsFor).
  sharepoint: [],
  teams: [
    app("o365_management", "ActivityFeed.Read", "Scanning"),
    app("graph", "TeamMember.Read.All", "Scanning"),
    app("graph", "Chat.UpdatePolicyViolation.All", "Block Message"),
    app("graph", "TeamsAppInstallation.ReadForUser.All", "Scanning"),
    app(
      "graph",
      "TeamsAppInstallation.ReadWriteSelfForUser.All",
      "Notify User (ZscalerWorkflow Automation)",
    ),
    app(
      "graph",
      "TeamsAppInstallation.ReadWriteAndConsentForTeam.All",
      "Notify User (ZscalerWorkflow Automation)",
    ),
    app("graph", "Sites.Selected", "Scanning"),
    app("graph", "TeamsActivity.Read.All", "Scanning"),
    app("graph", "TeamsAppInstallation.ReadForChat.All", "Scanning"),
    app("graph", "ChannelSettings.Read.All", "Scanning"),
    app("graph", "Channel.ReadBasic.All", "Scanning"),
    app("graph", "People.Read.All", "Scanning"),
    app("graph", "Group.Read.All", "Scanning"),
    app("graph", "Sites.Read.All", "Scanning"),
    app("graph", "Sites.ReadWrite.All", ...SITES_READWRITE_ACTIONS),
    app("graph", "ChatMessage.Read.All", "Scanning"),
    app("graph", "Directory.Read.All", "Scanning"),
    app("graph", "User.Read.All", "Scanning"),
    app("graph", "ChannelMember.Read.All", "Scanning"),
    app("graph", "GroupMember.Read.All", "Scanning"),
    app("graph", "Files.Read.All", "Scanning"),
    app("graph", "Team.ReadBasic.All", "Scanning"),
    app("graph", "Chat.Read.All", "Scanning"),
    app("graph", "ChannelMessage.Read.All", "Scanning"),
    app(
      "graph",
      "ChannelMessage.UpdatePolicyViolation.All",
      "Notify User (ZscalerWorkflow Automation)",
      "Notify User",
    ),
    app("graph", "Organization.Read.All", "Scanning"),
    app("graph", "AuditLog.Read.All", "Scanning"),
    app("graph", "Chat.ReadBasic.All", "Scanning"),
    app("graph", "Application.Read.All", "Scanning"),
    app("graph", "ChatMember.Read.All", "Scanning"),
    app(
      "graph",
      "TeamsAppInstallation.ReadForTeam.All",
      "Notify User (ZscalerWorkflow Automation)",
    ),
    app("graph", "Reports.Read.All", "Scanning"),
  ],
};

/** Our action keys of a row. */
export function rowActions(row: PermissionRow): SaasAction[] {
  const out = new Set<SaasAction>();
  for (const r of row.reference) for (const a of REFERENCE_ACTIONS[r] ?? []) out.add(a);
  return [...out];
}

/** What a tenant of `app` needs, and where the rows come from. */
export interface Requirements {
  rows: readonly PermissionRow[];
  /** The application whose table the rows are (itself, except for SharePoint). */
  source: SaasApp;
}

/**
 * The rows an application's tenant is validated against. The guide lists
 * no rows for SharePoint; SharePoint document libraries are Graph drives,
 * scanned and remediated with the same Graph calls as OneDrive
 * (drive_scan.ts), so a SharePoint tenant needs OneDrive's rows, and the
 * console says so.
 */
export function requirementsFor(a: SaasApp): Requirements {
  if (a === "sharepoint") return { rows: REFERENCE_TABLES.onedrive, source: "onedrive" };
  return { rows: REFERENCE_TABLES[a], source: a };
}

/** The APIs an application needs tokens for, in table order. */
export function apisFor(a: SaasApp): ApiKey[] {
  return [...new Set(requirementsFor(a).rows.map((r) => r.api))];
}

/** "Sites.ReadWrite.All (Microsoft Graph)". */
export function rowLabel(row: { api: ApiKey; permission: string }): string {
  return `${row.permission} (${APIS[row.api].name})`;
}
