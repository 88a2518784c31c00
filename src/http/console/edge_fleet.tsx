// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The edge console's "Edges" page: every edge sharing this database (the
 * fleet's registry), with its endpoints, health, last heartbeat and the
 * devices its tunnel holds, refreshed every 5 s and on health notifications.
 * An edge that is stopped or unhealthy can be forgotten (decommissioned);
 * the API refuses it for a healthy one. Below, this edge's mesh: a peer per
 * other healthy edge, its endpoint, last handshake, traffic and the devices
 * whose client-to-client traffic goes to it (src/fleet/mesh.ts).
 */
import type { Context, Hono } from "hono";
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { ActionButton, Card, Flash, Pill, Table, type Tone } from "../../../web/components.tsx";
import { formatAgo, formatTime } from "../../../web/format.ts";
import type { EdgeView } from "../../fleet/edge_registry.ts";
import type { MeshPeerView } from "../../edge/mesh_port.ts";
import { fragment, readForm } from "./common.ts";
import type { DlpConsoleHelpers } from "./edge_dlp.tsx";

/** An edge as GET /api/v1/admin/edges returns it. */
type EdgeJson = EdgeView;

const HEALTH_LABEL = {
  healthy: "fleet.health.healthy",
  unhealthy: "fleet.health.unhealthy",
  stopped: "fleet.health.stopped",
} as const;

const HEALTH_TONE: Record<EdgeView["health"], Tone> = {
  healthy: "ok",
  unhealthy: "bad",
  stopped: "idle",
};

/** The table of edges (also served alone for the live refresh). */
function EdgesTable(
  props: { t: Translate; lang: Lang; edges: EdgeJson[]; now: number; csrf: string },
) {
  const { t, lang } = props;
  return (
    <div
      id="edges-live"
      hx-get="/edges/table"
      hx-trigger="pc:edge_health from:body, every 5s"
      hx-swap="outerHTML"
    >
      <Table
        id="edges-table"
        caption={t("fleet.title")}
        head={[
          t("fleet.col.name"),
          t("fleet.col.region"),
          t("fleet.col.endpoints"),
          t("fleet.col.health"),
          t("fleet.col.heartbeat"),
          t("fleet.col.devices"),
          t("fleet.col.version"),
          "",
        ]}
        empty={t("fleet.none")}
        rowIds={props.edges.map((e) => `edge-${e.id}`)}
        rows={props.edges.map((e) => [
          <span>
            <strong>{e.name}</strong>
            {e.self ? <span class="muted" style="margin-left:4px">({t("fleet.self")})</span> : null}
          </span>,
          e.region || "—",
          <span class="mono">
            {e.endpoints.map((x) => `${x.transport}://${x.host}:${x.port}`).join(", ")}
          </span>,
          <Pill tone={HEALTH_TONE[e.health]} id={`edge-health-${e.id}`}>
            {t(HEALTH_LABEL[e.health])}
          </Pill>,
          <span title={formatTime(e.lastHeartbeat, lang)}>
            {formatAgo(e.lastHeartbeat, props.now, lang)}
          </span>,
          <span id={`edge-devices-${e.id}`}>{String(e.devicesConnected)}</span>,
          e.version,
          e.health === "healthy" ? "" : (
            <ActionButton
              action={`/edges/${encodeURIComponent(e.id)}/forget`}
              label={t("fleet.forget")}
              csrf={props.csrf}
              variant="danger"
              id={`edge-forget-${e.id}`}
            />
          ),
        ])}
      />
    </div>
  );
}

/** A mesh peer as GET /api/v1/admin/edges returns it (last handshake as ISO text). */
type MeshJson = Omit<MeshPeerView, "lastHandshake"> & { lastHandshake: string | null };

/** Bytes as the console shows them. */
function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** This edge's mesh peers. */
function MeshTable(props: { t: Translate; lang: Lang; mesh: MeshJson[]; now: number }) {
  const { t, lang } = props;
  return (
    <Table
      id="mesh-table"
      caption={t("fleet.mesh.title")}
      head={[
        t("fleet.mesh.col.edge"),
        t("fleet.mesh.col.endpoint"),
        t("fleet.mesh.col.handshake"),
        t("fleet.mesh.col.devices"),
        t("fleet.mesh.col.traffic"),
      ]}
      empty={t("fleet.mesh.none")}
      rowIds={props.mesh.map((m) => `mesh-${m.edgeId}`)}
      rows={props.mesh.map((m) => [
        <strong>{m.name}</strong>,
        <span class="mono">{m.endpoint ?? "—"}</span>,
        <span id={`mesh-handshake-${m.edgeId}`}>
          {m.lastHandshake === null
            ? t("fleet.mesh.never")
            : (
              <span title={formatTime(m.lastHandshake, lang)}>
                {formatAgo(m.lastHandshake, props.now, lang)}
              </span>
            )}
        </span>,
        <span id={`mesh-devices-${m.edgeId}`} class="mono">
          {m.addresses.length === 0 ? "—" : m.addresses.join(", ")}
        </span>,
        `↓ ${bytes(m.rxBytes)} ↑ ${bytes(m.txBytes)}`,
      ])}
    />
  );
}

/** The Edges page. */
function EdgesPage(
  props: {
    t: Translate;
    lang: Lang;
    edges: EdgeJson[];
    mesh: MeshJson[];
    now: number;
    csrf: string;
    unhealthyAfterMs: number;
    flash?: string;
    error?: string;
  },
) {
  const { t } = props;
  const healthy = props.edges.filter((e) => e.health === "healthy").length;
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <p class="muted">
        {t("fleet.intro", { seconds: Math.round(props.unhealthyAfterMs / 1000) })}
      </p>
      <Card title={t("fleet.summary", { healthy, total: props.edges.length })} wide>
        <EdgesTable {...props} />
      </Card>
      <Card title={t("fleet.mesh.title")} wide>
        <p class="muted">{t("fleet.mesh.intro")}</p>
        <MeshTable t={t} lang={props.lang} mesh={props.mesh} now={props.now} />
      </Card>
    </>
  );
}

/** Installs GET /edges, its live table and POST /edges/:id/forget (behind the session check). */
export function installFleetConsole(app: Hono<any>, h: DlpConsoleHelpers, now: () => number) {
  const load = (c: Context) => h.callApi(c, "GET", "/admin/edges");
  const show = async (c: Context, extra: { flash?: string; error?: string } = {}, status = 200) => {
    const t = c.get("t") as Translate;
    const r = await load(c);
    return h.frame(
      c,
      "edges",
      t("edge.tab.edges"),
      <EdgesPage
        t={t}
        lang={c.get("lang") as Lang}
        edges={r.data?.edges ?? []}
        mesh={r.data?.mesh ?? []}
        unhealthyAfterMs={r.data?.unhealthyAfterMs ?? 15_000}
        now={now()}
        csrf={h.csrf(c)}
        flash={extra.flash ??
          (c.req.query("msg") === "forgotten" ? t("fleet.forgotten") : undefined)}
        error={extra.error ?? (r.ok ? undefined : h.apiError(t, r))}
      />,
      status,
    );
  };
  app.get("/edges", (c) => show(c));
  app.get("/edges/table", async (c) => {
    const r = await load(c);
    return fragment(
      c,
      <EdgesTable
        t={c.get("t") as Translate}
        lang={c.get("lang") as Lang}
        edges={r.data?.edges ?? []}
        now={now()}
        csrf={h.csrf(c)}
      />,
    );
  });
  app.post("/edges/:id/forget", async (c) => {
    const form = await readForm(c);
    const r = await h.callApi(
      c,
      "DELETE",
      `/admin/edges/${encodeURIComponent(c.req.param("id"))}`,
      { csrf: form._csrf ?? "" },
    );
    if (!r.ok) return show(c, { error: h.apiError(c.get("t") as Translate, r) }, r.status);
    return c.redirect("/edges?msg=forgotten", 303);
  });
}
