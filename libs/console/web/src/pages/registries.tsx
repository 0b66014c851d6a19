// Models, use cases, incidents and SLAs: read-only lists of what the registry and sla
// services hold, each with an empty state that says how things get there.
import type { ComponentChildren } from "preact";
import { get } from "../api";
import { Badge, Empty, Show, useLoad, when } from "../ui";

type Row = Record<string, unknown>;

function cell(key: string, v: unknown): ComponentChildren {
  if (v === null || v === undefined || v === "") return <span class="muted">—</span>;
  if (/(status|state|stage|severity)$/.test(key) && typeof v === "string") return <Badge value={v} />;
  if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)) return when(v);
  if (Array.isArray(v)) return v.length > 0 && v.every((x) => typeof x !== "object") ? v.join(", ") : `${v.length}`;
  if (typeof v === "object") return <code class="small">{JSON.stringify(v).slice(0, 120)}</code>;
  if (typeof v === "number" && !Number.isInteger(v)) return v.toFixed(4);
  return String(v);
}

/** A table of `rows` with `columns` (or the scalar fields of the first rows). */
function Table({ rows, columns, label }: { rows: Row[]; columns?: string[]; label: string }) {
  const cols =
    columns ??
    [...new Set(rows.slice(0, 20).flatMap((r) => Object.keys(r)))]
      .filter((k) => rows.some((r) => r[k] !== null && typeof r[k] !== "object"))
      .slice(0, 8);
  return (
    <table aria-label={label}>
      <thead>
        <tr>
          {cols.map((c) => (
            <th scope="col" key={c}>
              {c.replaceAll("_", " ")}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={String(r.id ?? r.name ?? i)}>
            {cols.map((c) => (
              <td key={c}>{cell(c, r[c])}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function rowsOf(d: unknown): Row[] {
  if (Array.isArray(d)) return d as Row[];
  if (d && typeof d === "object") {
    const o = d as Record<string, unknown>;
    for (const k of ["items", "models", "usecases", "incidents", "slos", "rows"]) {
      if (Array.isArray(o[k])) return o[k] as Row[];
    }
  }
  return [];
}

function ListPage({
  title,
  path,
  empty,
  columns,
}: {
  title: string;
  path: string;
  empty: ComponentChildren;
  columns?: string[];
}) {
  const loaded = useLoad(() => get<unknown>(path), [path], 10000);
  return (
    <>
      <h1>{title}</h1>
      <Show loaded={loaded}>
        {(d) => {
          const rows = rowsOf(d);
          return rows.length ? (
            <Table rows={rows} label={title} {...(columns ? { columns } : {})} />
          ) : (
            <Empty>{empty}</Empty>
          );
        }}
      </Show>
    </>
  );
}

export function Models() {
  return (
    <ListPage
      title="Models"
      path="/v1/models"
      empty={
        <>
          No models are registered yet (MLflow clients or <code>goosectl model register</code>).
        </>
      }
    />
  );
}

export function UseCases() {
  return (
    <ListPage
      title="Use cases"
      path="/v1/usecases"
      empty={
        <>
          No AI use cases are registered yet (<code>goosectl usecase create</code>).
        </>
      }
    />
  );
}

/** `IncidentView`: the report's fields (type, severity, title, service) are flattened into it. */
interface IncidentRow {
  id: string;
  cause: string;
  type: string;
  severity: string;
  title: string;
  service?: string;
  status: string;
  assignee?: string | null;
  opened_by: string;
}

/** `SloEntry`: the SLO's fields with its version on the chain. */
interface SloRow {
  name: string;
  display_name?: string;
  service: string;
  window?: string;
  objectives?: { name?: string; target: number }[];
  version?: number;
  applied_by?: string;
}

export function Incidents() {
  const loaded = useLoad(() => get<IncidentRow[]>("/v1/incidents"), [], 10000);
  return (
    <>
      <h1>Incidents</h1>
      <Show loaded={loaded}>
        {(rows) =>
          rows.length ? (
            <table aria-label="Incidents">
              <thead>
                <tr>
                  <th scope="col">Title</th>
                  <th scope="col">Type</th>
                  <th scope="col">Severity</th>
                  <th scope="col">Service</th>
                  <th scope="col">Status</th>
                  <th scope="col">Assignee</th>
                  <th scope="col">Opened by</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.id} data-incident={r.id}>
                    <td>{r.title}</td>
                    <td>{r.type.replaceAll("_", " ")}</td>
                    <td>
                      <Badge value={r.severity} />
                    </td>
                    <td>{r.service ?? "—"}</td>
                    <td>
                      <Badge value={r.status} />
                    </td>
                    <td>{r.assignee ?? "—"}</td>
                    <td>{r.opened_by}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No incidents: none was opened by an SLO breach or by hand.</Empty>
          )
        }
      </Show>
    </>
  );
}

export function Slos() {
  const loaded = useLoad(() => get<SloRow[]>("/v1/slos"), [], 10000);
  return (
    <>
      <h1>Service level objectives</h1>
      <Show loaded={loaded}>
        {(rows) =>
          rows.length ? (
            <table aria-label="Service level objectives">
              <thead>
                <tr>
                  <th scope="col">SLO</th>
                  <th scope="col">Service</th>
                  <th scope="col">Window</th>
                  <th scope="col">Objectives</th>
                  <th scope="col">Version</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.name} data-slo={r.name}>
                    <td>{r.display_name ?? r.name}</td>
                    <td>{r.service}</td>
                    <td>{r.window ?? "—"}</td>
                    <td>
                      {(r.objectives ?? [])
                        .map((o) => `${o.name ?? `${(o.target * 100).toFixed(3).replace(/\.?0+$/, "")} %`}`)
                        .join(", ") || "—"}
                    </td>
                    <td>
                      v{r.version ?? "?"} by {r.applied_by ?? "?"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>
              No SLOs are defined yet (<code>goosectl sla apply</code>).
            </Empty>
          )
        }
      </Show>
    </>
  );
}
