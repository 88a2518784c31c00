// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The building blocks both consoles share: cards, status pills, statistics,
 * definition lists, tables, bar lists, flash messages and CSRF-carrying
 * forms. Presentation only: every string arrives translated, every value
 * arrives formatted or is formatted here with web/format.ts.
 */
import type { Child } from "hono/jsx";

/** Colour of a pill or flash: good, warning, bad, neutral or informative. */
export type Tone = "ok" | "warn" | "bad" | "idle" | "info";

/** A coloured status label with a dot. */
export function Pill(props: { tone: Tone; children: Child; id?: string }) {
  return (
    <span class={`pill pill-${props.tone}`} id={props.id}>
      <span class="dot" aria-hidden="true"></span>
      {props.children}
    </span>
  );
}

/** A titled card; `actions` go on the right of the title. */
export function Card(
  props: { title?: Child; actions?: Child; id?: string; wide?: boolean; children?: Child },
) {
  return (
    <section class={props.wide ? "card card-wide" : "card"} id={props.id}>
      {props.title !== undefined || props.actions !== undefined
        ? (
          <header class="card-head">
            {props.title !== undefined ? <h2>{props.title}</h2> : <span></span>}
            {props.actions !== undefined ? <div class="card-actions">{props.actions}</div> : null}
          </header>
        )
        : null}
      <div class="card-body">{props.children}</div>
    </section>
  );
}

/** One big number with a label and an optional note. */
export function Stat(props: { label: Child; value: Child; note?: Child; tone?: Tone }) {
  return (
    <div class={`stat${props.tone ? ` stat-${props.tone}` : ""}`}>
      <div class="stat-label">{props.label}</div>
      <div class="stat-value">{props.value}</div>
      {props.note !== undefined ? <div class="stat-note">{props.note}</div> : null}
    </div>
  );
}

/** A definition list of label/value rows. */
export function KeyValue(props: { rows: [Child, Child][]; id?: string }) {
  return (
    <dl class="kv" id={props.id}>
      {props.rows.map(([k, v]) => (
        <div class="kv-row">
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Horizontal bars for a breakdown ("by OS"), proportional to the largest value. */
export function BarList(props: { items: { label: string; value: number }[]; empty: Child }) {
  if (props.items.length === 0) return <p class="muted">{props.empty}</p>;
  const max = Math.max(...props.items.map((i) => i.value), 1);
  return (
    <ul class="bars" role="list">
      {props.items.map((i) => (
        <li>
          <span class="bar-label">{i.label}</span>
          <span class="bar-track" aria-hidden="true">
            <span class="bar-fill" style={`width:${Math.max(4, (i.value / max) * 100)}%`}></span>
          </span>
          <span class="bar-value">{i.value}</span>
        </li>
      ))}
    </ul>
  );
}

/** A message box above the page content. */
export function Flash(props: { tone: Tone; children: Child }) {
  return (
    <div class={`flash flash-${props.tone}`} role={props.tone === "bad" ? "alert" : "status"}>
      {props.children}
    </div>
  );
}

/** The hidden CSRF field every state-changing form carries. */
export function CsrfField(props: { token?: string }) {
  return props.token ? <input type="hidden" name="_csrf" value={props.token} /> : null;
}

/** A one-button POST form (with the CSRF field). */
export function ActionButton(
  props: {
    action: string;
    label: Child;
    csrf?: string;
    variant?: "primary" | "danger" | "secondary";
    fields?: Record<string, string>;
    id?: string;
    disabled?: boolean;
  },
) {
  return (
    <form method="post" action={props.action} class="inline-form">
      <CsrfField token={props.csrf} />
      {Object.entries(props.fields ?? {}).map(([k, v]) => (
        <input
          type="hidden"
          name={k}
          value={v}
        />
      ))}
      <button
        type="submit"
        class={`btn btn-${props.variant ?? "secondary"}`}
        id={props.id}
        disabled={props.disabled}
      >
        {props.label}
      </button>
    </form>
  );
}

/** A table with a caption for screen readers and an empty-state row. */
export function Table(
  props: {
    caption: string;
    head: Child[];
    rows: Child[][];
    empty: Child;
    id?: string;
    rowIds?: string[];
    rowAttrs?: Record<string, string>[];
  },
) {
  return (
    <div class="table-wrap">
      <table id={props.id}>
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            {props.head.map((h) => <th scope="col">{h}</th>)}
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0
            ? (
              <tr class="empty">
                <td colspan={props.head.length}>{props.empty}</td>
              </tr>
            )
            : props.rows.map((r, i) => (
              <tr id={props.rowIds?.[i]} {...(props.rowAttrs?.[i] ?? {})}>
                {r.map((cell) => <td>{cell}</td>)}
              </tr>
            ))}
        </tbody>
      </table>
    </div>
  );
}

/** A read-only value with a Copy button (the button needs JavaScript; the text stays selectable). */
export function CopyField(props: { id: string; value: string; label: string; copied: string }) {
  return (
    <div class="copy-field">
      <code id={props.id} class="secret" tabindex={0}>{props.value}</code>
      <button
        type="button"
        class="btn btn-secondary"
        data-copy={props.id}
        data-copied={props.copied}
      >
        {props.label}
      </button>
    </div>
  );
}

/** One event in a notification feed (both consoles). */
export function FeedItem(
  props: {
    id: string;
    type: string;
    typeLabel: string;
    tone: Tone;
    severityLabel: string;
    message: string;
    time: string;
    iso: string;
  },
) {
  return (
    <li id={props.id} data-type={props.type}>
      <time datetime={props.iso}>{props.time}</time>
      <div>
        <div>{props.message}</div>
        <span class="badge type">{props.typeLabel}</span>
      </div>
      <Pill tone={props.tone}>{props.severityLabel}</Pill>
    </li>
  );
}

/** The body of a console's "page not found" page (both consoles' 404s). */
export function NotFoundCard(props: { title: Child; body: Child; back: Child }) {
  return (
    <Card title={props.title}>
      <p>{props.body}</p>
      <p>
        <a href="/">{props.back}</a>
      </p>
    </Card>
  );
}
