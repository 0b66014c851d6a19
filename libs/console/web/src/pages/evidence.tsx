// Evidence of a service version: the summaries the evidence service extracted (tests,
// coverage, findings, SBOM components and vulnerabilities), upload of a file, and download of
// a blob (each download is recorded on the chain before the bytes are served).
import { useState } from "preact/hooks";
import { can, download, get, request, type Session } from "../api";
import { go, href } from "../router";
import { Badge, Empty, ErrorBox, Section, ServiceSelect, Show, short, useLoad, when } from "../ui";

interface EvidenceRecord {
  id: string;
  service: string;
  version: string;
  kind: string;
  digest: string;
  size: number;
  filename: string;
  summary: Record<string, unknown>;
  submitted_at: string;
  submitted_by: string;
  retain_until: string;
}

const KINDS = ["junit", "lcov", "cobertura", "sarif", "cyclonedx", "spdx", "in-toto", "openvex", "openapi"];

function num(v: unknown): number | null {
  return typeof v === "number" ? v : null;
}

/** The figures that matter from a summary (`{kind, <part>: {...}}`), whatever its kind. */
export function Summary({ s }: { s: Record<string, unknown> }) {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(s)) {
    if (!value || typeof value !== "object" || Array.isArray(value)) continue;
    const v = value as Record<string, unknown>;
    if (num(v.passed) !== null) parts.push(`${v.passed} passed, ${v.failed} failed, ${v.skipped} skipped`);
    else if (num(v.line_percent) !== null) {
      parts.push(
        `line coverage ${(v.line_percent as number).toFixed(2)}% (${v.lines_covered} of ${v.lines_total} lines)`,
      );
    } else if (num(v.components) !== null) {
      parts.push(`${v.components} components, ${v.vulnerable_components ?? 0} vulnerable`);
      const vulns = (v.vulnerabilities ?? []) as { id?: string; severity?: string }[];
      if (vulns.length)
        parts.push(`vulnerabilities: ${vulns.map((x) => `${x.id ?? "?"} (${x.severity ?? "?"})`).join(", ")}`);
    } else if (num(v.critical) !== null) {
      const tools = Array.isArray(v.tools) ? ` (${(v.tools as string[]).join(", ")})` : "";
      parts.push(`findings: ${v.critical} critical, ${v.high} high, ${v.medium} medium, ${v.low} low${tools}`);
    } else if (num(v.operations) !== null) {
      parts.push(
        `OpenAPI ${v.openapi ?? ""} “${v.title ?? ""}” ${v.api_version ?? ""}: ${v.paths} paths, ${v.operations} operations`,
      );
    } else {
      parts.push(`${key}: ${JSON.stringify(v).slice(0, 160)}`);
    }
  }
  if (parts.length === 0) return <code class="small">{JSON.stringify(s).slice(0, 200)}</code>;
  return <span>{parts.join("; ")}</span>;
}

function Upload({ service, version, onDone }: { service: string; version: string; onDone: () => void }) {
  const [kind, setKind] = useState("junit");
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [said, setSaid] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    setSaid(null);
    try {
      const form = new FormData();
      form.set("service", service);
      form.set("version", version);
      form.set("kind", kind);
      form.set("file", file, file.name);
      const rec = (await (await request("POST", "/v1/evidence", undefined, { raw: form })).json()) as EvidenceRecord;
      setSaid(`Recorded as evidence ${short(rec.id)} (${rec.kind}).`);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="form" onSubmit={submit} aria-label="Upload evidence">
      <label for="f-kind">Kind</label>
      <select id="f-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
        {KINDS.map((k) => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
      <label>
        File
        <input type="file" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
      </label>
      <button type="submit" disabled={busy || !file}>
        {busy ? "Uploading…" : `Upload for ${service}@${version}`}
      </button>
      {said ? <p role="status">{said}</p> : null}
      <ErrorBox error={error} />
    </form>
  );
}

export function Evidence({
  session,
  service,
  version,
}: {
  session: Session;
  service?: string | undefined;
  version?: string | undefined;
}) {
  const [error, setError] = useState<unknown>(null);
  const [typedVersion, setTypedVersion] = useState(version ?? "");
  const records = useLoad(
    () =>
      service
        ? get<EvidenceRecord[]>(
            `/v1/evidence?service=${encodeURIComponent(service)}${version ? `&version=${encodeURIComponent(version)}` : ""}`,
          )
        : Promise.resolve([] as EvidenceRecord[]),
    [service, version],
  );
  return (
    <>
      <h1>Evidence</h1>
      <form
        class="form row"
        aria-label="Choose a service version"
        onSubmit={(e) => {
          e.preventDefault();
          if (service) go("evidence", service, ...(typedVersion ? [typedVersion] : []));
        }}
      >
        <ServiceSelect value={service ?? ""} onChange={(v) => v && go("evidence", v)} />
        <label>
          Version
          <input
            value={typedVersion}
            placeholder="all versions"
            onInput={(e) => setTypedVersion(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="secondary" disabled={!service}>
          Show
        </button>
      </form>
      {!service ? (
        <Empty>Choose a service to see its evidence.</Empty>
      ) : (
        <>
          <Section title={`Evidence of ${service}${version ? `@${version}` : ""}`}>
            <Show loaded={records}>
              {(list) =>
                list.length === 0 ? (
                  <Empty>
                    No evidence recorded for {service}
                    {version ? `@${version}` : ""}.
                  </Empty>
                ) : (
                  <table aria-label="Evidence records">
                    <thead>
                      <tr>
                        <th scope="col">Version</th>
                        <th scope="col">Kind</th>
                        <th scope="col">Summary</th>
                        <th scope="col">File</th>
                        <th scope="col">Submitted</th>
                        <th scope="col">Retained until</th>
                      </tr>
                    </thead>
                    <tbody>
                      {list.map((r) => (
                        <tr key={r.id} data-kind={r.kind}>
                          <td>
                            <a href={href("evidence", r.service, r.version)}>{r.version}</a>
                          </td>
                          <td>
                            <Badge value={r.kind} />
                          </td>
                          <td>
                            <Summary s={r.summary} />
                          </td>
                          <td>
                            <button
                              type="button"
                              class="link"
                              onClick={() =>
                                download(`/v1/blobs/${r.digest}`, r.filename).catch((e: unknown) => setError(e))
                              }
                              aria-label={`Download ${r.filename}`}
                            >
                              {r.filename}
                            </button>{" "}
                            <span class="muted small">({r.size} bytes)</span>
                          </td>
                          <td>
                            {when(r.submitted_at)} by {r.submitted_by}
                          </td>
                          <td>{when(r.retain_until)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )
              }
            </Show>
            <ErrorBox error={error} />
          </Section>
          {can(session, "evidence.submit") && version ? (
            <Section title="Upload evidence">
              <Upload service={service} version={version} onDone={records.reload} />
            </Section>
          ) : can(session, "evidence.submit") ? (
            <p class="muted">Choose a version to upload evidence for it.</p>
          ) : null}
        </>
      )}
    </>
  );
}
