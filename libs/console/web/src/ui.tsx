// Small shared pieces: loading data with optional polling, errors as the API words them,
// badges, tables, times.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, get } from "./api";

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  reload: () => void;
}

/** Runs `load` now, when `deps` change, and every `pollMs` (when given) while mounted. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], pollMs?: number): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    load().then(
      (d) => {
        if (mine === generation.current) {
          setData(d);
          setError(null);
        }
      },
      (e: unknown) => {
        if (mine === generation.current) setError(e);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    setData(null);
    run();
  }, [run]);
  useEffect(() => {
    if (!pollMs) return undefined;
    const t = setInterval(run, pollMs);
    return () => clearInterval(t);
  }, [run, pollMs]);
  return { data, error, reload: run };
}

export function describe(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const status = error instanceof ApiError ? ` (HTTP ${error.status})` : "";
  return (
    <p class="error" role="alert">
      {describe(error)}
      {status}
    </p>
  );
}

/** Loading / error / content of a `useLoad`. */
export function Show<T>({ loaded, children }: { loaded: Loaded<T>; children: (d: T) => ComponentChildren }) {
  if (loaded.data === null) {
    return loaded.error ? (
      <ErrorBox error={loaded.error} />
    ) : (
      <p class="muted" aria-busy="true">
        Loading…
      </p>
    );
  }
  return (
    <>
      {loaded.error ? <ErrorBox error={loaded.error} /> : null}
      {children(loaded.data)}
    </>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

const tone: Record<string, string> = {
  compliant: "good",
  promoted: "good",
  succeeded: "good",
  pass: "good",
  passed: "good",
  granted: "good",
  approved: "good",
  resolved: "good",
  met: "good",
  ok: "good",
  production: "good",
  compliance_ready: "info",
  compliance_validating: "info",
  running: "info",
  pending: "info",
  requested: "info",
  acknowledged: "info",
  mitigated: "info",
  staging: "info",
  development: "neutral",
  non_compliant: "bad",
  failed: "bad",
  fail: "bad",
  blocked: "bad",
  rejected: "bad",
  refused: "bad",
  partially_succeeded: "warn",
  missing: "warn",
  open: "bad",
  breached: "bad",
  deprecated: "neutral",
};

export function Badge({ value }: { value: string | null | undefined }) {
  const v = value ?? "—";
  return <span class={`badge ${tone[v.toLowerCase()] ?? "neutral"}`}>{v.replaceAll("_", " ")}</span>;
}

export function when(t: string | number | null | undefined): string {
  if (t === null || t === undefined || t === "") return "—";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

export function short(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : "—";
}

export function Section({
  title,
  children,
  actions,
}: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  return (
    <section aria-label={title}>
      <div class="section-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A labelled choice among the catalog's services (`GET /v1/graph`). */
export function ServiceSelect({
  value,
  onChange,
  required = false,
}: {
  value: string;
  onChange: (service: string) => void;
  required?: boolean;
}) {
  const services = useLoad(() => get<{ services: string[] }>("/v1/graph"), []);
  return (
    <div>
      <label for="f-service">Service</label>
      <select id="f-service" required={required} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">Choose a service…</option>
        {(services.data?.services ?? []).map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
      <ErrorBox error={services.error} />
    </div>
  );
}
