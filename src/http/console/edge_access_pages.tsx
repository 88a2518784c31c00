// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The policy pages of the edge console's Private access section: application
 * segments and the ordered access rules, each a list with a form that adds
 * or edits one. Pure functions of the API's JSON and a translator; routes in
 * edge_access.tsx. The forms post plain fields; the route turns them into
 * the API's objects, so the API's validation is the only validation.
 */
import type { Child } from "hono/jsx";
import type { Translate } from "../../../web/i18n/mod.ts";
import { ActionButton, Card, CsrfField, Flash, Pill, Table } from "../../../web/components.tsx";

/** A segment as the API lists it. */
export interface SegmentJson {
  name: string;
  domains: string[];
  cidrs: string[];
  ports: string[];
  protocols: string[];
}

/** An access rule as the API lists it. */
export interface AccessRuleJson {
  name: string;
  ruleOrder: number;
  action: "allow" | "deny";
  segments: string[];
  users: string[];
  groups: string[];
  machineGroups: string[];
  devices: string[];
  postureProfiles: string[];
}

/** A device for the pickers: id and host name. */
export interface DevicePick {
  id: string;
  hostname: string;
}

/** What every page of the section shows around its body. */
export interface SectionProps {
  t: Translate;
  csrf: string;
  flash?: string;
  error?: string;
  /** The form's `edit` holds a refused new object to show again, not a stored one. */
  draft?: boolean;
}

/** Transport protocols a segment can name. */
export const PROTOCOLS = ["tcp", "udp", "icmp"] as const;

/** The section's sub-navigation. */
export function AccessNav(props: { t: Translate; active: string }) {
  const { t } = props;
  const items = [
    ["/access/segments", "segments", t("access.nav.segments")],
    ["/access/rules", "rules", t("access.nav.rules")],
    ["/access/posture", "posture", t("access.nav.posture")],
    ["/access/decisions", "decisions", t("access.nav.decisions")],
    ["/access/why", "why", t("access.nav.why")],
  ];
  return (
    <nav
      class="actions"
      aria-label={t("access.nav.label")}
      style="margin-bottom:18px"
      id="access-nav"
    >
      {items.map(([href, id, label]) => (
        <a
          href={href}
          class={id === props.active ? "btn btn-primary btn-small" : "btn btn-secondary btn-small"}
          aria-current={id === props.active ? "page" : undefined}
          id={`access-nav-${id}`}
        >
          {label}
        </a>
      ))}
    </nav>
  );
}

/** The flash line of a page: the outcome of the last action, or the API's error. */
export function Flashes(props: { flash?: string; error?: string }) {
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error
        ? (
          <div id="access-error">
            <Flash tone="bad">{props.error}</Flash>
          </div>
        )
        : null}
    </>
  );
}

/** A DOM id from a policy object's name (names may hold spaces and dots). */
export const rowId = (prefix: string, name: string) =>
  `${prefix}-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;

function TextField(
  props: { id: string; name: string; label: string; value?: string; hint?: string; big?: boolean },
) {
  return (
    <div class="form-row">
      <label for={props.id}>{props.label}</label>
      {props.big
        ? (
          <textarea id={props.id} name={props.name} rows={3} maxlength={200_000}>
            {props.value ?? ""}
          </textarea>
        )
        : (
          <input
            type="text"
            id={props.id}
            name={props.name}
            value={props.value ?? ""}
            maxlength={20_000}
          />
        )}
      {props.hint ? <span class="hint">{props.hint}</span> : null}
    </div>
  );
}

/** Checkboxes named `${prefix}.${value}`, ticked for `checked`. */
function Checks(
  props: {
    legend: string;
    prefix: string;
    options: { value: string; label: string }[];
    checked: readonly string[];
    empty?: string;
  },
) {
  return (
    <fieldset class="form-row" id={`f-${props.prefix}`}>
      <legend>{props.legend}</legend>
      {props.options.length === 0 && props.empty ? <span class="muted">{props.empty}</span> : null}
      {props.options.map((o) => (
        <label class="check">
          <input
            type="checkbox"
            name={`${props.prefix}.${o.value}`}
            checked={props.checked.includes(o.value)}
          />
          {o.label}
        </label>
      ))}
    </fieldset>
  );
}

const joined = (xs: readonly string[]) => xs.join(", ");

/** Segments: the list, and a form that adds one or edits the one picked. */
export function SegmentsPage(
  props: SectionProps & {
    segments: SegmentJson[];
    edit: SegmentJson | null;
    usedBy: Map<string, string[]>;
  },
) {
  const { t } = props;
  const enc = encodeURIComponent;
  const e = props.edit;
  const editing = e !== null && !props.draft;
  return (
    <>
      <AccessNav t={t} active="segments" />
      <Flashes flash={props.flash} error={props.error} />
      <Card wide title={t("access.segments")}>
        <p class="hint">{t("access.segments_hint")}</p>
        <Table
          id="segments-table"
          caption={t("access.segments")}
          head={[
            t("access.name"),
            t("access.destinations"),
            t("access.ports"),
            t("access.protocols"),
            t("access.used_by"),
            "",
          ]}
          empty={t("access.no_segments")}
          rowIds={props.segments.map((s) => rowId("segment", s.name))}
          rows={props.segments.map((s) => [
            <strong>{s.name}</strong>,
            <code>{joined([...s.domains, ...s.cidrs]) || "—"}</code>,
            joined(s.ports) || t("access.all_ports"),
            joined(s.protocols),
            joined(props.usedBy.get(s.name) ?? []) || "—",
            <div class="actions">
              <a class="btn btn-secondary" href={`/access/segments?edit=${enc(s.name)}`}>
                {t("access.edit")}
              </a>
              <ActionButton
                action={`/access/segments/${enc(s.name)}/delete`}
                label={t("access.delete")}
                csrf={props.csrf}
                variant="danger"
              />
            </div>,
          ])}
        />
      </Card>
      <Card
        title={editing && e ? t("access.edit_segment", { name: e.name }) : t("access.add_segment")}
      >
        <form method="post" action="/access/segments" class="form" id="segment-form">
          <CsrfField token={props.csrf} />
          <input type="hidden" name="original" value={editing ? e?.name : ""} />
          <div class="form-row">
            <label for="s-name">{t("access.name")}</label>
            <input
              type="text"
              id="s-name"
              name="name"
              required
              maxlength={100}
              value={e?.name ?? ""}
              readonly={editing}
            />
          </div>
          <TextField
            id="s-domains"
            name="domains"
            label={t("access.domains")}
            value={joined(e?.domains ?? [])}
            hint={t("access.domains_hint")}
          />
          <TextField
            id="s-cidrs"
            name="cidrs"
            label={t("access.cidrs")}
            value={joined(e?.cidrs ?? [])}
            hint={t("access.cidrs_hint")}
            big
          />
          <TextField
            id="s-ports"
            name="ports"
            label={t("access.ports")}
            value={joined(e?.ports ?? [])}
            hint={t("access.ports_hint")}
          />
          <Checks
            legend={t("access.protocols")}
            prefix="proto"
            options={PROTOCOLS.map((p) => ({ value: p, label: p.toUpperCase() }))}
            checked={e?.protocols ?? [...PROTOCOLS]}
          />
          <div class="actions">
            <button type="submit" class="btn btn-primary" id="segment-save">
              {editing ? t("access.save") : t("access.add_segment")}
            </button>
            {e
              ? <a class="btn btn-secondary" href="/access/segments">{t("access.cancel")}</a>
              : null}
          </div>
        </form>
      </Card>
    </>
  );
}

function Conditions(props: { t: Translate; r: AccessRuleJson; devices: Map<string, string> }) {
  const { t, r } = props;
  const parts: Child[] = [];
  const add = (label: string, xs: string[]) => {
    if (xs.length) {
      parts.push(
        <div>
          <span class="muted">{label}:</span> {joined(xs)}
        </div>,
      );
    }
  };
  add(t("access.users"), r.users);
  add(t("access.groups"), r.groups);
  add(t("access.machine_groups"), r.machineGroups);
  add(t("access.devices"), r.devices.map((id) => props.devices.get(id) ?? id));
  add(t("access.posture_profiles"), r.postureProfiles);
  return parts.length ? <>{parts}</> : <span class="muted">{t("access.everyone")}</span>;
}

/** Rules: the ordered list with move up/down, edit and delete; a form that adds or edits one. */
export function RulesPage(
  props: SectionProps & {
    rules: AccessRuleJson[];
    segments: string[];
    postureProfiles: string[];
    devices: DevicePick[];
    /** Names known to the edge, shown under the fields (free text stays allowed: IdP groups). */
    known: { users: string[]; groups: string[]; machineGroups: string[] };
    edit: AccessRuleJson | null;
  },
) {
  const { t } = props;
  const enc = encodeURIComponent;
  const e = props.edit;
  const editing = e !== null && !props.draft;
  const names = new Map(props.devices.map((d) => [d.id, d.hostname]));
  const last = props.rules.length - 1;
  const hint = (xs: string[], base: string) =>
    xs.length ? `${base} · ${t("access.known", { names: xs.slice(0, 20).join(", ") })}` : base;
  return (
    <>
      <AccessNav t={t} active="rules" />
      <Flashes flash={props.flash} error={props.error} />
      <Card wide title={t("access.rules")}>
        <p class="hint">{t("access.rules_hint")}</p>
        <Table
          id="rules-table"
          caption={t("access.rules")}
          head={[
            "#",
            t("access.name"),
            t("access.action"),
            t("access.nav.segments"),
            t("access.conditions"),
            "",
          ]}
          empty={t("access.no_rules")}
          rowIds={props.rules.map((r) => rowId("rule", r.name))}
          rows={props.rules.map((r, i) => [
            String(i + 1),
            <strong>{r.name}</strong>,
            <Pill tone={r.action === "allow" ? "ok" : "bad"}>{t(`access.action.${r.action}`)}
            </Pill>,
            joined(r.segments),
            <Conditions t={t} r={r} devices={names} />,
            <div class="actions">
              {i > 0
                ? (
                  <ActionButton
                    action={`/access/rules/${enc(r.name)}/up`}
                    label={t("access.move_up")}
                    csrf={props.csrf}
                  />
                )
                : null}
              {i < last
                ? (
                  <ActionButton
                    action={`/access/rules/${enc(r.name)}/down`}
                    label={t("access.move_down")}
                    csrf={props.csrf}
                  />
                )
                : null}
              <a class="btn btn-secondary" href={`/access/rules?edit=${enc(r.name)}`}>
                {t("access.edit")}
              </a>
              <ActionButton
                action={`/access/rules/${enc(r.name)}/delete`}
                label={t("access.delete")}
                csrf={props.csrf}
                variant="danger"
              />
            </div>,
          ])}
        />
      </Card>
      <Card title={editing && e ? t("access.edit_rule", { name: e.name }) : t("access.add_rule")}>
        {props.segments.length === 0
          ? <p class="muted">{t("access.rules_need_segments")}</p>
          : (
            <form method="post" action="/access/rules" class="form" id="rule-form">
              <CsrfField token={props.csrf} />
              <input type="hidden" name="original" value={editing ? e?.name : ""} />
              <div class="form-inline">
                <div class="form-row">
                  <label for="r-name">{t("access.name")}</label>
                  <input
                    type="text"
                    id="r-name"
                    name="name"
                    required
                    maxlength={100}
                    value={e?.name ?? ""}
                    readonly={editing}
                  />
                </div>
                <div class="form-row">
                  <label for="r-action">{t("access.action")}</label>
                  <select id="r-action" name="action">
                    {(["allow", "deny"] as const).map((a) => (
                      <option value={a} selected={e?.action === a}>
                        {t(`access.action.${a}`)}
                      </option>
                    ))}
                  </select>
                </div>
              </div>
              <Checks
                legend={t("access.nav.segments")}
                prefix="seg"
                options={props.segments.map((s) => ({ value: s, label: s }))}
                checked={e?.segments ?? []}
              />
              <p class="hint">{t("access.conditions_hint")}</p>
              <div class="form-inline">
                <TextField
                  id="r-users"
                  name="users"
                  label={t("access.users")}
                  value={joined(e?.users ?? [])}
                  hint={hint(props.known.users, t("access.comma_hint"))}
                />
                <TextField
                  id="r-groups"
                  name="groups"
                  label={t("access.groups")}
                  value={joined(e?.groups ?? [])}
                  hint={hint(props.known.groups, t("access.comma_hint"))}
                />
                <TextField
                  id="r-machine-groups"
                  name="machineGroups"
                  label={t("access.machine_groups")}
                  value={joined(e?.machineGroups ?? [])}
                  hint={hint(props.known.machineGroups, t("access.machine_groups_hint"))}
                />
              </div>
              <Checks
                legend={t("access.devices")}
                prefix="dev"
                options={props.devices.map((d) => ({ value: d.id, label: d.hostname }))}
                checked={e?.devices ?? []}
                empty={t("access.no_devices")}
              />
              <Checks
                legend={t("access.posture_profiles")}
                prefix="pp"
                options={props.postureProfiles.map((p) => ({ value: p, label: p }))}
                checked={e?.postureProfiles ?? []}
                empty={t("access.no_posture_profiles")}
              />
              <div class="actions">
                <button type="submit" class="btn btn-primary" id="rule-save">
                  {editing ? t("access.save") : t("access.add_rule")}
                </button>
                {e
                  ? <a class="btn btn-secondary" href="/access/rules">{t("access.cancel")}</a>
                  : null}
              </div>
            </form>
          )}
      </Card>
    </>
  );
}
