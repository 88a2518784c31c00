/**
 * The permission tables against the connector guide (shared/reference/004)
 * and the pure evaluation over them: which rows each application has, in
 * the guide's order, and what a missing row disables.
 */
import assert from "node:assert/strict";
import {
  APIS,
  evaluate,
  grantMap,
  REFERENCE_ACTIONS,
  REFERENCE_TABLES,
  requirementsFor,
  rowsEnabling,
  SAAS_ACTIONS,
  SAAS_APPS,
} from "../../src/saas/mod.ts";
import type { ApiGrant } from "../../src/saas/mod.ts";

/** The guide's text, where the team keeps the reference documents (the test is skipped elsewhere). */
const REFERENCE = Deno.env.get("PORTCULLIS_SAAS_REFERENCE") ??
  "/work/shared/reference/004_dba486ef66d7e50a.txt";
const hasReference = (() => {
  try {
    return Deno.statSync(REFERENCE).isFile;
  } catch {
    return false;
  }
})();

/** "api:permission" per application, as the guide lists them (transcribed row by row). */
const EXPECTED: Record<string, string[]> = {
  exchange: [
    "graph:Mail.ReadWrite",
    "graph:MailboxSettings.Read",
    "graph:Directory.Read.All",
    "graph:User.Read.All",
    "graph:Mail.Send",
    "graph:Organization.Read.All",
    "graph:AuditLog.Read.All",
    "graph:Member.Read.Hidden",
    "graph:Reports.Read.All",
  ],
  azure_blob: ["azure_storage:user_impersonation", "azure_service_management:user_impersonation"],
  mip: [
    "graph:InformationProtectionPolicy.Read.All",
    "mip_sync:UnifiedPolicy.Tenant.Read",
    "rms:Content.DelegatedWriter",
    "rms:Content.Writer",
    "rms:Content.SuperUser",
    "rms:Content.DelegatedReader",
  ],
  onedrive: [
    "o365_management:ActivityFeed.Read",
    "graph:People.Read.All",
    "graph:Group.Read.All",
    "graph:Sites.Manage.All",
    "graph:Sites.ReadWrite.All",
    "graph:Files.ReadWrite.All",
    "graph:Directory.Read.All",
    "graph:GroupMember.Read.All",
    "graph:Organization.Read.All",
    "graph:AuditLog.Read.All",
    "graph:Application.Read.All",
    "graph:Reports.Read.All",
  ],
  sharepoint: [],
  teams: [
    "o365_management:ActivityFeed.Read",
    ...[
      "TeamMember.Read.All",
      "Chat.UpdatePolicyViolation.All",
      "TeamsAppInstallation.ReadForUser.All",
      "TeamsAppInstallation.ReadWriteSelfForUser.All",
      "TeamsAppInstallation.ReadWriteAndConsentForTeam.All",
      "Sites.Selected",
      "TeamsActivity.Read.All",
      "TeamsAppInstallation.ReadForChat.All",
      "ChannelSettings.Read.All",
      "Channel.ReadBasic.All",
      "People.Read.All",
      "Group.Read.All",
      "Sites.Read.All",
      "Sites.ReadWrite.All",
      "ChatMessage.Read.All",
      "Directory.Read.All",
      "User.Read.All",
      "ChannelMember.Read.All",
      "GroupMember.Read.All",
      "Files.Read.All",
      "Team.ReadBasic.All",
      "Chat.Read.All",
      "ChannelMessage.Read.All",
      "ChannelMessage.UpdatePolicyViolation.All",
      "Organization.Read.All",
      "AuditLog.Read.All",
      "Chat.ReadBasic.All",
      "Application.Read.All",
      "ChatMember.Read.All",
      "TeamsAppInstallation.ReadForTeam.All",
      "Reports.Read.All",
    ].map((p) => `graph:${p}`),
  ],
};

Deno.test("saas tables: every application's rows, in the guide's order", () => {
  assert.deepEqual([...SAAS_APPS].sort(), Object.keys(EXPECTED).sort());
  for (const app of SAAS_APPS) {
    assert.deepEqual(
      REFERENCE_TABLES[app].map((r) => `${r.api}:${r.permission}`),
      EXPECTED[app],
      app,
    );
  }
});

Deno.test({
  name: "saas tables: every permission and action named in the rows appears in the guide's text",
  ignore: !hasReference,
}, async () => {
  const text = await Deno.readTextFile(REFERENCE);
  for (const app of SAAS_APPS) {
    for (const r of REFERENCE_TABLES[app]) {
      assert.ok(text.includes(r.permission), `${r.permission} in the guide`);
      assert.ok(text.includes(APIS[r.api].name), `${APIS[r.api].name} in the guide`);
      for (const a of r.reference) assert.ok(text.includes(a), `"${a}" in the guide`);
    }
  }
  // The guide's SharePoint section has no table: SharePoint borrows OneDrive's.
  assert.match(text, /- SharePoint\n- TeamsClose/);
});

Deno.test("saas tables: action wording maps to our actions; every action is reachable", () => {
  const used = new Set<string>();
  for (const app of SAAS_APPS) {
    for (const r of REFERENCE_TABLES[app]) {
      for (const ref of r.reference) {
        assert.ok(REFERENCE_ACTIONS[ref], `"${ref}" is mapped`);
        for (const a of REFERENCE_ACTIONS[ref]) used.add(a);
      }
    }
  }
  assert.deepEqual([...used].sort(), [...SAAS_ACTIONS].sort());
  assert.deepEqual(REFERENCE_ACTIONS["Scanning and Quarantine"], ["scanning", "quarantine"]);
});

Deno.test("saas tables: SharePoint is validated against OneDrive's rows", () => {
  const r = requirementsFor("sharepoint");
  assert.equal(r.source, "onedrive");
  assert.equal(r.rows, REFERENCE_TABLES.onedrive);
  assert.equal(requirementsFor("teams").source, "teams");
});

const grant = (api: ApiGrant["api"], roles: string[], issued = true): ApiGrant => ({
  api,
  issued,
  roles,
  scopes: null,
});

Deno.test("saas evaluation: table of grants → status, missing rows, disabled and enabled actions", () => {
  const allExchange = REFERENCE_TABLES.exchange.map((r) => r.permission);
  const cases: {
    name: string;
    app: (typeof SAAS_APPS)[number];
    grants: ApiGrant[];
    status: string;
    missing: string[];
    disabled: string[];
  }[] = [
    {
      name: "exchange, all granted",
      app: "exchange",
      grants: [grant("graph", allExchange)],
      status: "successful",
      missing: [],
      disabled: [],
    },
    {
      name: "exchange, Mail.Send missing disables quarantine only",
      app: "exchange",
      grants: [grant("graph", allExchange.filter((p) => p !== "Mail.Send"))],
      status: "failed",
      missing: ["Mail.Send"],
      disabled: ["quarantine"],
    },
    {
      name: "exchange, no token for Graph: everything missing",
      app: "exchange",
      grants: [grant("graph", [], false)],
      status: "failed",
      missing: allExchange,
      disabled: ["apply_email_tag_label", "scanning", "quarantine"],
    },
    {
      name: "azure blob, tokens issued without scp: delegated rows granted",
      app: "azure_blob",
      grants: [grant("azure_storage", []), grant("azure_service_management", [])],
      status: "successful",
      missing: [],
      disabled: [],
    },
    {
      name: "azure blob, scp without user_impersonation",
      app: "azure_blob",
      grants: [
        { api: "azure_storage", issued: true, roles: [], scopes: ["other"] },
        grant("azure_service_management", []),
      ],
      status: "failed",
      missing: ["user_impersonation"],
      disabled: ["discover_storage_account", "scanning"],
    },
    {
      name: "onedrive, extra roles do not hurt",
      app: "onedrive",
      grants: [
        grant("o365_management", ["ActivityFeed.Read", "ServiceHealth.Read"]),
        grant("graph", [...REFERENCE_TABLES.onedrive.map((r) => r.permission), "Mail.Read"]),
      ],
      status: "successful",
      missing: [],
      disabled: [],
    },
    {
      name: "onedrive, role names are exact (case matters)",
      app: "onedrive",
      grants: [
        grant("o365_management", ["ActivityFeed.Read"]),
        grant(
          "graph",
          REFERENCE_TABLES.onedrive.filter((r) => r.api === "graph").map((r) =>
            r.permission === "Files.ReadWrite.All" ? "files.readwrite.all" : r.permission
          ),
        ),
      ],
      status: "failed",
      missing: ["Files.ReadWrite.All"],
      disabled: ["scanning", "quarantine", "quarantine_to_user_root"],
    },
  ];
  for (const c of cases) {
    const ev = evaluate(c.app, grantMap(c.grants));
    assert.equal(ev.status, c.status, c.name);
    assert.deepEqual(ev.missing.map((m) => m.permission), c.missing, c.name);
    assert.deepEqual([...ev.disabledActions].sort(), [...c.disabled].sort(), c.name);
    for (const a of ev.enabledActions) assert.ok(!ev.disabledActions.includes(a), c.name);
  }
});

Deno.test("saas evaluation: which rows enable an action", () => {
  assert.deepEqual(
    rowsEnabling("onedrive", "quarantine").map((r) => r.permission),
    ["Sites.ReadWrite.All", "Files.ReadWrite.All"],
  );
  assert.deepEqual(
    rowsEnabling("teams", "block_message").map((r) => r.permission),
    ["Chat.UpdatePolicyViolation.All"],
  );
});
