// Promotions: the list, starting one (a package or a service version, with a reason), and
// the live pipeline of one promotion — its targets in promotion order, each gate's checks
// with outcome and reason, the recorded steps (each a fact the chain page can verify), the
// facts each decision read (auditors), and the audit export.
import { useState } from "preact/hooks";
import { can, download, get, send, type Session } from "../api";
import { go, href } from "../router";
import { Badge, Empty, ErrorBox, Section, ServiceSelect, Show, short, useLoad, when } from "../ui";

export interface Target {
  spec: { service: string; version: string; owner?: string | null; required?: string[]; optional?: string[] };
  status: string;
  compliance?: string | null;
  started_at?: string | null;
  checks: Record<string, [string, string]>;
  reason?: string | null;
}

export interface PromotionView {
  id: string;
  request?: {
    targets: { service: string; version: string }[];
    requester: string;
    package?: string | null;
    approval_id?: string | null;
    impact: string;
    reason: string;
    requested_at: string;
  } | null;
  targets: Target[];
  outcome?: string | null;
}

interface Step {
  position: number;
  event_id: string;
  event_type: string;
  digest: string;
  actor: string;
  recorded_at: string;
  event: Record<string, unknown> & {
    service?: string;
    version?: string;
    checks?: {
      check: string;
      outcome: string;
      reason: string;
      /** The facts the decision read (explain only): an event, a checkpoint, the policy. */
      inputs?: { kind: string; id: string; position?: number; digest?: string; note?: string }[];
    }[];
    reason?: string;
    outcome?: string;
  };
}

interface PackageView {
  id: string;
  version: string;
  members: { service: string; version: string }[];
  created_by: string;
  promotions: string[];
}

function status(p: PromotionView): string {
  if (p.outcome) return p.outcome;
  return p.targets.some((t) => t.status !== "pending") ? "running" : "pending";
}

export function Promotions({ session }: { session: Session }) {
  const loaded = useLoad(() => get<PromotionView[]>("/v1/promotions"), [], 3000);
  const mayStart = can(session, "promotion.request") || can(session, "package.promote");
  return (
    <>
      <div class="section-head">
        <h1>Promotions</h1>
        {mayStart ? (
          <a class="button" href={href("promotions", "new")}>
            Start a promotion
          </a>
        ) : null}
      </div>
      <Show loaded={loaded}>
        {(list) =>
          list.length === 0 ? (
            <Empty>No promotions yet.</Empty>
          ) : (
            <table aria-label="Promotions">
              <thead>
                <tr>
                  <th scope="col">Promotion</th>
                  <th scope="col">Status</th>
                  <th scope="col">Targets</th>
                  <th scope="col">Requested by</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Requested</th>
                </tr>
              </thead>
              <tbody>
                {[...list]
                  .sort((a, b) => (b.request?.requested_at ?? "").localeCompare(a.request?.requested_at ?? ""))
                  .map((p) => (
                    <tr key={p.id}>
                      <td>
                        <a href={href("promotions", p.id)}>{short(p.id)}</a>
                      </td>
                      <td>
                        <Badge value={status(p)} />
                      </td>
                      <td>
                        {p.targets.map((t) => (
                          <span key={t.spec.service} class="target-chip">
                            {t.spec.service}@{t.spec.version} <Badge value={t.status} />
                          </span>
                        ))}
                      </td>
                      <td>{p.request?.requester}</td>
                      <td>{p.request?.reason}</td>
                      <td>{when(p.request?.requested_at)}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </>
  );
}

const IMPACTS = ["", "low", "medium", "high", "critical"];

export function StartPromotion({ session }: { session: Session }) {
  const mayPackage = can(session, "package.promote");
  const mayService = can(session, "promotion.request");
  const [mode, setMode] = useState<"package" | "service">(mayPackage ? "package" : "service");
  const [pkg, setPkg] = useState("");
  const [service, setService] = useState("");
  const [version, setVersion] = useState("");
  const [reason, setReason] = useState("");
  const [impact, setImpact] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const packages = useLoad(() => get<PackageView[]>("/v1/packages"), []);

  if (!mayPackage && !mayService) {
    return <p role="alert">Your roles do not allow starting promotions.</p>;
  }
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = { reason };
      if (impact) body.impact = impact;
      const view =
        mode === "package"
          ? await send<{ id: string }>("POST", `/v1/packages/${encodeURIComponent(pkg)}/promote`, body)
          : await send<{ id: string }>("POST", "/v1/promotions", { ...body, service, version });
      go("promotions", view.id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <p>
        <a href={href("promotions")}>← Promotions</a>
      </p>
      <h1>Start a promotion</h1>
      <form onSubmit={submit} class="form" aria-label="Start a promotion">
        <fieldset>
          <legend>What to promote</legend>
          {mayPackage ? (
            <label class="inline">
              <input type="radio" name="mode" checked={mode === "package"} onChange={() => setMode("package")} /> A
              package
            </label>
          ) : null}
          {mayService ? (
            <label class="inline">
              <input type="radio" name="mode" checked={mode === "service"} onChange={() => setMode("service")} /> One
              service version
            </label>
          ) : null}
        </fieldset>
        {mode === "package" ? (
          <>
            <label for="f-package">Package</label>
            <select id="f-package" required value={pkg} onChange={(e) => setPkg(e.currentTarget.value)}>
              <option value="">Choose a package…</option>
              {(packages.data ?? []).map((p) => (
                <option key={p.id} value={p.id}>
                  {p.version}: {p.members.map((m) => `${m.service}@${m.version}`).join(", ")} ({short(p.id)})
                </option>
              ))}
            </select>
          </>
        ) : (
          <>
            <ServiceSelect required value={service} onChange={setService} />
            <label>
              Version
              <input required value={version} onInput={(e) => setVersion(e.currentTarget.value)} />
            </label>
          </>
        )}
        <label>
          Reason
          <textarea required value={reason} onInput={(e) => setReason(e.currentTarget.value)} rows={2} />
        </label>
        <label for="f-impact-decides-how-many-">Impact (decides how many approvals it needs)</label>
        <select id="f-impact-decides-how-many-" value={impact} onChange={(e) => setImpact(e.currentTarget.value)}>
          {IMPACTS.map((i) => (
            <option key={i} value={i}>
              {i || "the policy's default"}
            </option>
          ))}
        </select>
        <ErrorBox error={packages.error} />
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          {busy ? "Requesting…" : "Request promotion"}
        </button>
      </form>
    </>
  );
}

function Checks({ target }: { target: Target }) {
  const entries = Object.entries(target.checks);
  if (entries.length === 0) return <p class="muted small">No gate evaluated yet.</p>;
  return (
    <table class="checks" aria-label={`Gate checks of ${target.spec.service}`}>
      <thead>
        <tr>
          <th scope="col">Check</th>
          <th scope="col">Outcome</th>
          <th scope="col">Reason</th>
        </tr>
      </thead>
      <tbody>
        {entries.map(([check, [outcome, reason]]) => (
          <tr key={check} data-check={check} data-outcome={outcome}>
            <td>
              {check.split("_").map((w, i) => (
                <>
                  {i > 0 ? (
                    <>
                      _<wbr />
                    </>
                  ) : null}
                  {w}
                </>
              ))}
            </td>
            <td>
              <Badge value={outcome} />
            </td>
            <td>{reason}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Pipeline({ p }: { p: PromotionView }) {
  return (
    <ol class="pipeline" aria-label="Targets in promotion order">
      {p.targets.map((t) => (
        <li key={t.spec.service} class={`stage ${t.status}`} data-target={t.spec.service} data-status={t.status}>
          <h3>
            <a href={href("services", t.spec.service)}>{t.spec.service}</a>@{t.spec.version} <Badge value={t.status} />
          </h3>
          {t.compliance ? (
            <p class="small">
              Compliance: <Badge value={t.compliance} />
            </p>
          ) : null}
          {t.reason ? (
            <p class="reason" data-testid="target-reason">
              {t.reason}
            </p>
          ) : null}
          <Checks target={t} />
        </li>
      ))}
    </ol>
  );
}

function summary(s: Step): string {
  const e = s.event;
  const who = e.service ? `${e.service}@${e.version ?? ""}` : "";
  if (e.checks) {
    return `${who} ${e.checks.map((c) => `${c.check}: ${c.outcome}`).join(", ")}`;
  }
  return [who, e.reason, e.outcome].filter(Boolean).join(" — ");
}

function Steps({ steps, explain }: { steps: Step[]; explain: boolean }) {
  return (
    <table aria-label="Recorded steps">
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Step</th>
          <th scope="col">What</th>
          <th scope="col">By</th>
          <th scope="col">Recorded</th>
          <th scope="col">Proof</th>
        </tr>
      </thead>
      <tbody>
        {steps.map((s) => (
          <tr key={s.event_id}>
            <td>{s.position}</td>
            <td>{s.event_type}</td>
            <td>
              {summary(s)}
              {explain && s.event.checks?.some((c) => c.inputs?.length) ? (
                <details>
                  <summary>Facts this decision read</summary>
                  <ul class="facts">
                    {s.event.checks.flatMap((c) =>
                      (c.inputs ?? []).map((f, i) => (
                        <li key={`${c.check}-${i}`}>
                          {c.check} read {f.kind}{" "}
                          {f.position !== undefined ? (
                            <a
                              href={href("chain", f.id)}
                              aria-label={`Verify the ${f.kind} fact at position ${f.position}`}
                            >
                              #{f.position}
                            </a>
                          ) : (
                            <code>{f.id.length > 24 ? `${f.id.slice(0, 16)}…` : f.id}</code>
                          )}
                          {f.digest ? (
                            <>
                              {" "}
                              <code title={f.digest}>{f.digest.slice(0, 12)}…</code>
                            </>
                          ) : null}
                          {f.note ? `: ${f.note}` : ""}
                        </li>
                      )),
                    )}
                  </ul>
                </details>
              ) : null}
            </td>
            <td>{s.actor}</td>
            <td>{when(s.recorded_at)}</td>
            <td>
              <a href={href("chain", s.event_id)} aria-label={`Verify step ${s.position} in the browser`}>
                verify
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function PromotionPage({ id, session }: { id: string; session: Session }) {
  const auditor = can(session, "audit.read");
  const [done, setDone] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const loaded = useLoad(
    async () => {
      const [p, steps] = await Promise.all([
        get<PromotionView>(`/v1/promotions/${encodeURIComponent(id)}`),
        get<{ events: Step[] }>(`/v1/promotions/${encodeURIComponent(id)}/${auditor ? "explain" : "steps"}`),
      ]);
      if (p.outcome) setDone(true);
      return { p, steps: steps.events };
    },
    [id, auditor],
    done ? undefined : 1000,
  );
  return (
    <>
      <p>
        <a href={href("promotions")}>← Promotions</a>
      </p>
      <Show loaded={loaded}>
        {({ p, steps }) => (
          <>
            <div class="section-head">
              <h1>
                Promotion {short(p.id)} <Badge value={status(p)} />
              </h1>
              {auditor ? (
                <button
                  type="button"
                  onClick={() =>
                    download(
                      `/v1/audit/promotions/${encodeURIComponent(id)}/export`,
                      `promotion-${id}-export.json`,
                    ).catch((e: unknown) => setError(e))
                  }
                >
                  Export audit record
                </button>
              ) : null}
            </div>
            <ErrorBox error={error} />
            <p aria-live="polite" data-testid="promotion-status">
              {p.outcome ? `Finished: ${p.outcome.replaceAll("_", " ")}.` : "Running — this page follows it live."}
            </p>
            <dl class="facts-list">
              <dt>Requested by</dt>
              <dd>{p.request?.requester}</dd>
              <dt>Reason</dt>
              <dd>{p.request?.reason || "—"}</dd>
              <dt>Impact</dt>
              <dd>{p.request?.impact}</dd>
              {p.request?.package ? (
                <>
                  <dt>Package</dt>
                  <dd>{short(p.request.package)}</dd>
                </>
              ) : null}
              {p.request?.approval_id ? (
                <>
                  <dt>Approval</dt>
                  <dd>
                    {can(session, "promotion.approve") ? (
                      <a href={href("approvals")}>{short(p.request.approval_id)}</a>
                    ) : (
                      short(p.request.approval_id)
                    )}
                  </dd>
                </>
              ) : null}
              <dt>Requested</dt>
              <dd>{when(p.request?.requested_at)}</dd>
            </dl>
            <Section title="Pipeline">
              <Pipeline p={p} />
            </Section>
            <Section title={auditor ? "Steps and the facts they read" : "Steps"}>
              <Steps steps={steps} explain={auditor} />
            </Section>
          </>
        )}
      </Show>
    </>
  );
}
