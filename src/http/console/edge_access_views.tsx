// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The other pages of the Private access section: posture profiles (the
 * checks of the policy model, one form row per check type), the decision
 * log with its filters, and "why can't this device reach that?", which shows
 * what the edge's own evaluator answers (deciding rule, reason, the subject
 * and the posture it decided with). Routes in edge_access.tsx.
 */
import { z } from "zod";
import { hasMessage, type Lang, type Translate } from "../../../web/i18n/mod.ts";
import { PostureCheck } from "../../policy/types.ts";
import { ActionButton, Card, CsrfField, KeyValue, Pill, Table } from "../../../web/components.tsx";
import { formatTime } from "../../../web/format.ts";
import {
  AccessNav,
  type DevicePick,
  Flashes,
  PROTOCOLS,
  rowId,
  type SectionProps,
} from "./edge_access_pages.tsx";

/** One posture check as the API stores it. */
export type CheckJson = { type: string } & Record<string, unknown>;

/** A posture profile as the API lists it. */
export interface PostureProfileJson {
  name: string;
  checks: CheckJson[];
  /** Minutes a report counts (the API's default when left out). */
  validityMinutes?: number | string;
  /** Minutes between the edge's evaluations of the stored facts. */
  reevaluateMinutes?: number | string;
}

/** A posted minutes field: a number when it is one, as typed otherwise (the API names it), left out when empty. */
export function minutesFromForm(raw: string | undefined): number | string | undefined {
  const v = (raw ?? "").trim();
  if (!v) return undefined;
  return /^\d+$/.test(v) ? Number(v) : v;
}

/** How a check's field is typed in the form. */
export type FieldKind = "string" | "number" | "boolean" | "list";

/** One field of a check type: its name, kind, and whether it may be left out. */
export interface CheckField {
  name: string;
  kind: FieldKind;
  optional: boolean;
}

function fieldOf(name: string, schema: z.ZodType): CheckField {
  const optional = schema instanceof z.ZodOptional || schema instanceof z.ZodDefault;
  const inner = schema instanceof z.ZodOptional
    ? schema.unwrap()
    : schema instanceof z.ZodDefault
    ? schema.unwrap()
    : schema;
  const kind: FieldKind = inner instanceof z.ZodNumber
    ? "number"
    : inner instanceof z.ZodBoolean
    ? "boolean"
    : inner instanceof z.ZodArray
    ? "list"
    : "string";
  return { name, kind, optional };
}

/**
 * The check types the form edits and their fields, read from the policy
 * model's schema (src/policy/types.ts PostureCheck), so a check type added
 * there appears here without a console change. A second check of one type
 * rides along unchanged in a hidden field.
 */
export const CHECK_FIELDS: Record<string, readonly CheckField[]> = Object.fromEntries(
  PostureCheck.options.map((o) => {
    const shape = (o as z.ZodObject).shape;
    const type = String((shape.type as z.ZodLiteral).value);
    const fields = Object.entries(shape).filter(([k]) => k !== "type")
      .map(([k, v]) => fieldOf(k, v as z.ZodType));
    return [type, fields];
  }),
);

/** A message when the catalogue has it, else the fallback (a check type added after the catalogue). */
const label = (t: Translate, key: string, fallback: string) =>
  hasMessage(key) ? t(key as never) : fallback;

/** The label of a check type. */
const checkLabel = (t: Translate, type: string) => label(t, `access.check.${type}`, type);

/** A field's value as the form shows it. */
const shown = (v: unknown) => (Array.isArray(v) ? v.join(", ") : v === undefined ? "" : String(v));

/** Reads a check of `type` from the posted form, or null when its box is not ticked. */
export function checkFromForm(
  f: Record<string, string>,
  type: string,
  fields: readonly CheckField[],
): CheckJson | null {
  if (f[`chk.${type}`] !== "on") return null;
  const check: CheckJson = { type };
  for (const field of fields) {
    const raw = (f[`${type}.${field.name}`] ?? "").trim();
    if (field.kind === "boolean") check[field.name] = raw === "on";
    else if (field.kind === "list") {
      const xs = raw.split(/[,\n\r]+/).map((x) => x.trim()).filter(Boolean);
      if (xs.length || !field.optional) check[field.name] = xs;
    } else if (raw) {
      // A number field that is not a number goes as typed: the API's sentence names it.
      check[field.name] = field.kind === "number" && /^-?\d+(\.\d+)?$/.test(raw)
        ? Number(raw)
        : raw;
    }
  }
  return check;
}

/** A check in words: its type's label and its values. */
function checkText(t: Translate, c: CheckJson): string {
  const name = checkLabel(t, c.type);
  const values = Object.entries(c).filter(([k, v]) => k !== "type" && v !== undefined && v !== "")
    .map(([k, v]) => `${k} ${shown(v)}`);
  return values.length ? `${name} (${values.join(", ")})` : name;
}

/** Splits checks into the first of each form-edited type and the rest. */
export function splitChecks(checks: readonly CheckJson[]): {
  byType: Map<string, CheckJson>;
  extra: CheckJson[];
} {
  const byType = new Map<string, CheckJson>();
  const extra: CheckJson[] = [];
  for (const c of checks) {
    if (Object.hasOwn(CHECK_FIELDS, c.type) && !byType.has(c.type)) byType.set(c.type, c);
    else extra.push(c);
  }
  return { byType, extra };
}

/** A minutes setting of a profile (1 to 1440; empty keeps the API's default, shown as placeholder). */
function MinutesField(
  props: {
    id: string;
    name: string;
    label: string;
    placeholder: number;
    value: number | string | undefined;
  },
) {
  return (
    <div class="form-row">
      <label for={props.id}>{props.label}</label>
      <input
        type="number"
        id={props.id}
        name={props.name}
        min={1}
        max={1440}
        placeholder={String(props.placeholder)}
        value={props.value === undefined ? "" : String(props.value)}
      />
    </div>
  );
}

/** Posture profiles: the list, and a form that adds or edits one. */
export function PosturePage(
  props: SectionProps & {
    profiles: PostureProfileJson[];
    edit: PostureProfileJson | null;
    usedBy: Map<string, string[]>;
  },
) {
  const { t } = props;
  const enc = encodeURIComponent;
  const e = props.edit;
  const editing = e !== null && !props.draft;
  const { byType, extra } = splitChecks(e?.checks ?? []);
  return (
    <>
      <AccessNav t={t} active="posture" />
      <Flashes flash={props.flash} error={props.error} />
      <Card wide title={t("access.posture_profiles")}>
        <p class="hint">{t("access.posture_hint")}</p>
        <Table
          id="posture-table"
          caption={t("access.posture_profiles")}
          head={[t("access.name"), t("access.checks"), t("access.used_by"), ""]}
          empty={t("access.no_posture_profiles")}
          rowIds={props.profiles.map((p) => rowId("posture", p.name))}
          rows={props.profiles.map((p) => [
            <div>
              <strong>{p.name}</strong>
              <div class="hint">
                {t("access.posture_timing", {
                  validity: String(p.validityMinutes ?? 15),
                  reevaluate: String(p.reevaluateMinutes ?? 5),
                })}
              </div>
            </div>,
            <ul class="plain">{p.checks.map((c) => <li>{checkText(t, c)}</li>)}</ul>,
            (props.usedBy.get(p.name) ?? []).join(", ") || "—",
            <div class="actions">
              <a class="btn btn-secondary" href={`/access/posture?edit=${enc(p.name)}`}>
                {t("access.edit")}
              </a>
              <ActionButton
                action={`/access/posture/${enc(p.name)}/delete`}
                label={t("access.delete")}
                csrf={props.csrf}
                variant="danger"
              />
            </div>,
          ])}
        />
      </Card>
      <Card
        title={editing && e ? t("access.edit_posture", { name: e.name }) : t("access.add_posture")}
      >
        <form method="post" action="/access/posture" class="form" id="posture-form">
          <CsrfField token={props.csrf} />
          <input type="hidden" name="original" value={editing ? e?.name : ""} />
          <input type="hidden" name="extra" value={JSON.stringify(extra)} />
          <div class="form-row">
            <label for="p-name">{t("access.name")}</label>
            <input
              type="text"
              id="p-name"
              name="name"
              required
              maxlength={100}
              value={e?.name ?? ""}
              readonly={editing}
            />
          </div>
          {([
            ["p-validity", "validityMinutes", t("access.posture_validity"), 15],
            ["p-reevaluate", "reevaluateMinutes", t("access.posture_reevaluate"), 5],
          ] as const).map(([id, name, text, placeholder]) => (
            <MinutesField
              id={id}
              name={name}
              label={text}
              placeholder={placeholder}
              value={e?.[name]}
            />
          ))}
          <fieldset class="form-row">
            <legend>{t("access.checks")}</legend>
            {Object.entries(CHECK_FIELDS).map(([type, fields]) => {
              const c = byType.get(type);
              return (
                <div class="form-inline check-row">
                  <label class="check">
                    <input
                      type="checkbox"
                      name={`chk.${type}`}
                      id={`p-chk-${type}`}
                      checked={!!c}
                    />
                    {checkLabel(t, type)}
                  </label>
                  {fields.map((f) => {
                    const id = `p-${type}-${f.name}`;
                    const aria = `${checkLabel(t, type)}: ${
                      label(t, `access.field.${f.name}`, f.name)
                    }`;
                    return f.kind === "boolean"
                      ? (
                        <label class="check">
                          <input
                            type="checkbox"
                            name={`${type}.${f.name}`}
                            id={id}
                            checked={c?.[f.name] === true}
                          />
                          {label(t, `access.field.${f.name}`, f.name)}
                        </label>
                      )
                      : (
                        <input
                          type="text"
                          name={`${type}.${f.name}`}
                          id={id}
                          aria-label={aria}
                          placeholder={label(t, `access.field.${f.name}`, f.name)}
                          value={c ? shown(c[f.name]) : ""}
                          maxlength={4096}
                        />
                      );
                  })}
                </div>
              );
            })}
          </fieldset>
          <div class="actions">
            <button type="submit" class="btn btn-primary" id="posture-save">
              {editing ? t("access.save") : t("access.add_posture")}
            </button>
            {e
              ? <a class="btn btn-secondary" href="/access/posture">{t("access.cancel")}</a>
              : null}
          </div>
        </form>
      </Card>
    </>
  );
}

/** A decision as the API lists it. */
export interface DecisionJson {
  id: number;
  at: string;
  deviceId: string;
  deviceName: string;
  user: string | null;
  src: string;
  dst: string;
  port: number;
  protocol: string;
  name: string | null;
  verdict: "allow" | "deny";
  rule: string | null;
  segments: string[];
  reason: string;
}

/** The decision log filters. */
export interface DecisionFilter {
  device: string;
  user: string;
  dst: string;
  verdict: string;
}

function DeviceSelect(
  props: { t: Translate; id: string; devices: DevicePick[]; value: string; any?: boolean },
) {
  return (
    <select id={props.id} name="device" required={!props.any}>
      {props.any ? <option value="">{props.t("access.all")}</option> : null}
      {props.devices.map((d) => (
        <option value={d.id} selected={d.id === props.value}>{d.hostname}</option>
      ))}
    </select>
  );
}

const whyLink = (d: DecisionJson) =>
  `/access/why?${new URLSearchParams({
    device: d.deviceId,
    dest: d.name ?? d.dst,
    port: d.protocol === "icmp" ? "" : String(d.port),
    protocol: d.protocol,
  })}`;

/** The decision log: filter by device, user, destination and result. */
export function DecisionsPage(
  props: SectionProps & {
    lang: Lang;
    devices: DevicePick[];
    filter: DecisionFilter;
    decisions: DecisionJson[];
    /** The next page (older decisions) under the same filters, or null at the end. */
    older: string | null;
  },
) {
  const { t, filter: f } = props;
  return (
    <>
      <AccessNav t={t} active="decisions" />
      <Flashes flash={props.flash} error={props.error} />
      <Card wide title={t("access.decisions")}>
        <form method="get" action="/access/decisions" class="form-inline" id="decision-filter">
          <div class="form-row">
            <label for="d-device">{t("access.device")}</label>
            <DeviceSelect t={t} id="d-device" devices={props.devices} value={f.device} any />
          </div>
          <div class="form-row">
            <label for="d-user">{t("access.user")}</label>
            <input type="text" id="d-user" name="user" value={f.user} maxlength={256} />
          </div>
          <div class="form-row">
            <label for="d-dst">{t("access.destination")}</label>
            <input
              type="text"
              id="d-dst"
              name="dst"
              value={f.dst}
              maxlength={253}
              placeholder={t("access.destination_hint")}
            />
          </div>
          <div class="form-row">
            <label for="d-verdict">{t("access.result")}</label>
            <select id="d-verdict" name="verdict">
              <option value="">{t("access.all")}</option>
              {(["allow", "deny"] as const).map((v) => (
                <option value={v} selected={f.verdict === v}>{t(`access.verdict.${v}`)}</option>
              ))}
            </select>
          </div>
          <button type="submit" class="btn btn-secondary btn-small" id="decision-search">
            {t("access.search")}
          </button>
        </form>
        <Table
          id="decisions-table"
          caption={t("access.decisions")}
          head={[
            t("access.time"),
            t("access.device"),
            t("access.user"),
            t("access.destination"),
            t("access.result"),
            t("access.rule"),
            t("access.reason"),
            "",
          ]}
          empty={t("access.no_decisions")}
          rowAttrs={props.decisions.map((d) => ({ "data-verdict": d.verdict }))}
          rows={props.decisions.map((d) => [
            formatTime(Date.parse(d.at), props.lang),
            d.deviceName,
            d.user ?? "—",
            <span>
              <code>{`${d.dst}${d.protocol === "icmp" ? "" : `:${d.port}`}/${d.protocol}`}</code>
              {d.name ? <span class="muted">{` ${d.name}`}</span> : null}
            </span>,
            <Pill tone={d.verdict === "allow" ? "ok" : "bad"}>
              {t(`access.verdict.${d.verdict}`)}
            </Pill>,
            d.rule ?? "—",
            d.reason,
            <a href={whyLink(d)}>{t("access.why_link")}</a>,
          ])}
        />
        {props.older
          ? (
            <p>
              <a href={props.older} class="btn btn-secondary btn-small" id="decisions-older">
                {t("access.older")}
              </a>
            </p>
          )
          : null}
      </Card>
    </>
  );
}

/** What the explain API answers. */
export interface ExplanationJson {
  subject: {
    deviceName: string;
    user: string | null;
    machine: boolean;
    groups: { name: string; source: string }[];
  };
  posture: { profile: string; passed: boolean; reason: string; expiresAt: string }[];
  decision: {
    allowed: boolean;
    private: boolean;
    segments: string[];
    rule: string | null;
    reason: string;
  };
}

/** The "why?" query. */
export interface WhyQuery {
  device: string;
  dest: string;
  port: string;
  protocol: string;
}

/** "Why can't <device> reach <app>?": the form, and the evaluator's answer. */
export function WhyPage(
  props: SectionProps & {
    lang: Lang;
    devices: DevicePick[];
    query: WhyQuery;
    result: ExplanationJson | null;
  },
) {
  const { t, query: q, result: r } = props;
  return (
    <>
      <AccessNav t={t} active="why" />
      <Flashes flash={props.flash} error={props.error} />
      <Card wide title={t("access.why_title")}>
        <p class="hint">{t("access.why_hint")}</p>
        <form method="get" action="/access/why" class="form-inline" id="why-form">
          <div class="form-row">
            <label for="w-device">{t("access.device")}</label>
            <DeviceSelect t={t} id="w-device" devices={props.devices} value={q.device} />
          </div>
          <div class="form-row">
            <label for="w-dest">{t("access.destination")}</label>
            <input
              type="text"
              id="w-dest"
              name="dest"
              value={q.dest}
              required
              maxlength={253}
              placeholder={t("access.destination_hint")}
            />
          </div>
          <div class="form-row">
            <label for="w-port">{t("access.port")}</label>
            <input
              type="text"
              id="w-port"
              name="port"
              value={q.port}
              maxlength={5}
              inputmode="numeric"
            />
          </div>
          <div class="form-row">
            <label for="w-protocol">{t("access.protocol")}</label>
            <select id="w-protocol" name="protocol">
              {PROTOCOLS.map((p) => (
                <option value={p} selected={q.protocol === p}>{p.toUpperCase()}</option>
              ))}
            </select>
          </div>
          <button type="submit" class="btn btn-primary btn-small" id="why-run">
            {t("access.why_run")}
          </button>
        </form>
      </Card>
      {r
        ? (
          <div class="grid" id="why-result">
            <Card title={t("access.decision")}>
              <KeyValue
                id="why-decision"
                rows={[
                  [
                    t("access.result"),
                    <Pill tone={r.decision.allowed ? "ok" : "bad"} id="why-verdict">
                      {t(r.decision.allowed ? "access.verdict.allow" : "access.verdict.deny")}
                    </Pill>,
                  ],
                  [
                    t("access.rule"),
                    <strong id="why-rule">{r.decision.rule ?? t("access.default_rule")}</strong>,
                  ],
                  [t("access.reason"), <span id="why-reason">{r.decision.reason}</span>],
                  [t("access.nav.segments"), r.decision.segments.join(", ") || "—"],
                  [
                    t("access.private"),
                    r.decision.private ? t("access.private_yes") : t("access.private_no"),
                  ],
                ]}
              />
            </Card>
            <Card title={t("access.subject")}>
              <KeyValue
                rows={[
                  [t("access.device"), r.subject.deviceName],
                  [
                    t("access.user"),
                    r.subject.user ?? (r.subject.machine ? t("access.machine") : "—"),
                  ],
                  [
                    t("access.groups"),
                    r.subject.groups.map((g) => `${g.name} (${g.source})`).join(", ") || "—",
                  ],
                ]}
              />
              <Table
                id="why-posture"
                caption={t("access.posture_profiles")}
                head={[
                  t("access.posture_profiles"),
                  t("access.result"),
                  t("access.reason"),
                  t("access.valid_until"),
                ]}
                empty={t("access.no_posture_results")}
                rows={r.posture.map((p) => [
                  p.profile,
                  <Pill tone={p.passed ? "ok" : "bad"}>
                    {t(p.passed ? "access.posture_passed" : "access.posture_failed")}
                  </Pill>,
                  p.reason,
                  formatTime(Date.parse(p.expiresAt), props.lang),
                ])}
              />
            </Card>
          </div>
        )
        : null}
    </>
  );
}
