// Compliance overview: the seed's "Service Compliance Status" grid (services × compliance
// state), the dependency graph drawn as SVG in promotion waves, and each service's page.
import { get } from "../api";
import { href } from "../router";
import { Badge, Empty, Section, Show, useLoad, when } from "../ui";

export interface ComplianceRow {
  service: string;
  version: string;
  state: string;
  since?: unknown;
}

interface Graph {
  services: string[];
  edges: [string, string, string][];
  waves: string[][];
}

const STATES = ["sandbox", "compliance_ready", "compliant"];

function Grid({ services, rows }: { services: string[]; rows: ComplianceRow[] }) {
  if (services.length === 0) return <Empty>No services are onboarded yet (goosectl service apply).</Empty>;
  return (
    <table class="grid" aria-label="Service compliance status">
      <thead>
        <tr>
          <th scope="col">Service</th>
          {STATES.map((s) => (
            <th scope="col" key={s}>
              <Badge value={s} />
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {services.map((svc) => {
          const mine = rows.filter((r) => r.service === svc);
          return (
            <tr key={svc} data-service={svc}>
              <th scope="row">
                <a href={href("services", svc)}>{svc}</a>
              </th>
              {STATES.map((st) => {
                const versions = mine.filter((r) => r.state === st).map((r) => r.version);
                return (
                  <td key={st} class={versions.length ? `cell ${st}` : "cell"} data-state={st}>
                    {versions.length ? (
                      versions.join(", ")
                    ) : (
                      <span class="muted" aria-label="none">
                        ·
                      </span>
                    )}
                  </td>
                );
              })}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

const W = 170;
const H = 44;
const GAP_X = 70;
const GAP_Y = 22;

/** The dependency graph: one column per promotion wave, arrows from dependant to dependency. */
export function GraphSvg({ graph, states }: { graph: Graph; states: Map<string, string> }) {
  const waves = graph.waves.length ? graph.waves : [graph.services];
  const pos = new Map<string, { x: number; y: number }>();
  waves.forEach((wave, i) =>
    wave.forEach((svc, j) => pos.set(svc, { x: 10 + i * (W + GAP_X), y: 10 + j * (H + GAP_Y) })),
  );
  const width = 20 + waves.length * (W + GAP_X) - GAP_X;
  const height = 20 + Math.max(1, ...waves.map((w) => w.length)) * (H + GAP_Y) - GAP_Y;
  return (
    <svg class="graph" viewBox={`0 0 ${width} ${height}`} width={width} height={height} aria-labelledby="graph-title">
      <title id="graph-title">
        {`Dependency graph: ${graph.edges.map(([a, b, k]) => `${a} needs ${b}${k === "optional" ? " (optional)" : ""}`).join("; ") || "no dependencies"}`}
      </title>
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="10"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto-start-reverse"
        >
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
        </marker>
      </defs>
      {graph.edges.map(([from, to, kind]) => {
        const a = pos.get(from);
        const b = pos.get(to);
        if (!a || !b) return null;
        return (
          <line
            key={`${from}-${to}`}
            class={`edge ${kind}`}
            x1={a.x}
            y1={a.y + H / 2}
            x2={b.x + W}
            y2={b.y + H / 2}
            marker-end="url(#arrow)"
          />
        );
      })}
      {[...pos].map(([svc, p]) => (
        <a key={svc} href={href("services", svc)}>
          <g class={`node ${states.get(svc) ?? "none"}`} data-node={svc}>
            <rect x={p.x} y={p.y} width={W} height={H} rx="6" />
            <text x={p.x + 10} y={p.y + 18}>
              {svc}
            </text>
            <text x={p.x + 10} y={p.y + 35} class="sub">
              {(states.get(svc) ?? "no version").replaceAll("_", " ")}
            </text>
          </g>
        </a>
      ))}
    </svg>
  );
}

/** The most advanced state of a service's versions. */
export function bestStates(rows: ComplianceRow[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of rows) {
    const cur = m.get(r.service);
    if (!cur || STATES.indexOf(r.state) > STATES.indexOf(cur)) m.set(r.service, r.state);
  }
  return m;
}

export function Compliance() {
  const loaded = useLoad(
    () => Promise.all([get<Graph>("/v1/graph"), get<ComplianceRow[]>("/v1/compliance")]),
    [],
    5000,
  );
  return (
    <>
      <h1>Service compliance status</h1>
      <Show loaded={loaded}>
        {([graph, rows]) => (
          <>
            <Section title="Compliance state">
              <Grid services={graph.services} rows={rows} />
            </Section>
            <Section title="Dependency graph">
              {graph.services.length ? (
                <div class="scroll" tabIndex={0} aria-label="Dependency graph">
                  <GraphSvg graph={graph} states={bestStates(rows)} />
                  <p class="muted small">
                    Columns are promotion waves, promoted left to right; an arrow points from a service to one it needs
                    (dashed: optional).
                  </p>
                </div>
              ) : (
                <Empty>No services yet.</Empty>
              )}
            </Section>
          </>
        )}
      </Show>
    </>
  );
}

interface PromotionSummary {
  id: string;
  status?: string;
  promotion?: {
    targets?: { spec: { service: string; version: string }; status: string }[];
    outcome?: unknown;
    request?: { reason?: string; requested_by?: string; requested_at?: string };
  };
}

export function ServicePage({ name }: { name: string }) {
  const loaded = useLoad(
    () =>
      Promise.all([
        get<Record<string, unknown>>(`/v1/services/${encodeURIComponent(name)}`),
        get<ComplianceRow[]>(`/v1/compliance?service=${encodeURIComponent(name)}`),
        get<PromotionSummary[]>("/v1/promotions"),
      ]),
    [name],
  );
  return (
    <>
      <p>
        <a href={href("compliance")}>← Compliance</a>
      </p>
      <h1>{name}</h1>
      <Show loaded={loaded}>
        {([def, rows, promotions]) => {
          const mine = promotions.filter((p) => p.promotion?.targets?.some((t) => t.spec.service === name));
          return (
            <>
              <Section title="Versions">
                {rows.length ? (
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Version</th>
                        <th scope="col">Compliance state</th>
                        <th scope="col">Evidence</th>
                      </tr>
                    </thead>
                    <tbody>
                      {rows.map((r) => (
                        <tr key={r.version}>
                          <td>{r.version}</td>
                          <td>
                            <Badge value={r.state} />
                          </td>
                          <td>
                            <a href={href("evidence", name, r.version)}>evidence of {r.version}</a>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                ) : (
                  <Empty>No version of {name} has evidence or a promotion yet.</Empty>
                )}
              </Section>
              <Section title="Promotion history">
                {mine.length ? (
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Promotion</th>
                        <th scope="col">Version</th>
                        <th scope="col">Target status</th>
                        <th scope="col">Requested</th>
                      </tr>
                    </thead>
                    <tbody>
                      {mine.map((p) => {
                        const t = p.promotion?.targets?.find((x) => x.spec.service === name);
                        return (
                          <tr key={p.id}>
                            <td>
                              <a href={href("promotions", p.id)}>{p.id.slice(0, 8)}</a>
                            </td>
                            <td>{t?.spec.version}</td>
                            <td>
                              <Badge value={t?.status} />
                            </td>
                            <td>{when(p.promotion?.request?.requested_at)}</td>
                          </tr>
                        );
                      })}
                    </tbody>
                  </table>
                ) : (
                  <Empty>{name} has not been in a promotion yet.</Empty>
                )}
              </Section>
              <Section title="Definition">
                <pre class="json" tabIndex={0}>
                  {JSON.stringify(def, null, 2)}
                </pre>
              </Section>
            </>
          );
        }}
      </Show>
    </>
  );
}
