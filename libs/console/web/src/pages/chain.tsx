// The chain: the newest checkpoint checked in the browser against the log key the auditor
// pins, the chain watch's integrity figures, and "verify this fact": an event's inclusion
// proof (C2SP tlog-proof) checked here with WebCrypto, so the auditor need not trust the server.
import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { get, getText } from "../api";
import { go } from "../router";
import { verifyCheckpoint, verifyInclusion, type CheckedCheckpoint, type ProvenEvent } from "../chain";
import { describe, Section, Show, useLoad, when } from "../ui";

/** The log key pinned in this tab (memory only), so every check of the session uses it. */
let pinnedKey = "";

function KeyField({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  return (
    <label>
      Log public key (verifier key)
      <input
        name="log_key"
        spellcheck={false}
        placeholder="goose.dev/ledger+1a2b3c4d+AW…"
        value={value}
        onInput={(e) => {
          pinnedKey = e.currentTarget.value.trim();
          onChange(pinnedKey);
        }}
      />
      <span class="hint">
        Paste the key from your organisation's published record (<code>goosectl keys show</code> prints it), not from
        this server: a check is only as good as the key it uses.
      </span>
    </label>
  );
}

function CheckpointCard({ vkey }: { vkey: string }) {
  const note = useLoad(() => getText("/v1/chain/checkpoint"), [], 5000);
  const [checked, setChecked] = useState<{ for: string; ok?: CheckedCheckpoint; error?: string } | null>(null);
  const text = note.data;
  useEffect(() => {
    if (text === null || !vkey) {
      setChecked(null);
      return;
    }
    let current = true;
    verifyCheckpoint(text, vkey).then(
      (ok) => current && setChecked({ for: text + vkey, ok }),
      (e: unknown) => current && setChecked({ for: text + vkey, error: describe(e) }),
    );
    return () => {
      current = false;
    };
  }, [text, vkey]);
  const lines = text?.split("\n") ?? [];
  return (
    <Show loaded={note}>
      {() => (
        <>
          <dl class="facts-list">
            <dt>Origin</dt>
            <dd>{lines[0]}</dd>
            <dt>Tree size</dt>
            <dd data-testid="checkpoint-size">{lines[1]}</dd>
            <dt>Root</dt>
            <dd>
              <code>{lines[2]}</code>
            </dd>
            <dt>Signature</dt>
            <dd data-testid="checkpoint-signature">
              {!vkey
                ? "not checked: pin the log key above"
                : checked?.ok
                  ? "✓ signed by the log key you pinned"
                  : checked?.error
                    ? `✗ ${checked.error}`
                    : "checking…"}
            </dd>
            <dt>Witnesses</dt>
            <dd>
              {checked?.ok
                ? checked.ok.others.length
                  ? checked.ok.others.join(", ")
                  : "none cosigned this checkpoint"
                : "—"}
            </dd>
          </dl>
          <details>
            <summary>The signed note</summary>
            <pre tabIndex={0}>{text}</pre>
          </details>
        </>
      )}
    </Show>
  );
}

function Integrity() {
  const kpi = useLoad(
    () => get<{ rows?: Record<string, unknown>[] } | Record<string, unknown>[]>("/v1/analytics/kpis/chain_integrity"),
    [],
    10000,
  );
  if (kpi.error) {
    return <p class="muted">The chain watch's figures are not available to you ({describe(kpi.error)}).</p>;
  }
  return (
    <Show loaded={kpi}>
      {(d) => {
        const rows = Array.isArray(d) ? d : (d.rows ?? []);
        const r = rows[0];
        if (!r) return <p class="empty">The chain watch has not checked the chain yet.</p>;
        return (
          <dl class="facts-list" data-testid="chain-integrity">
            {Object.entries(r).map(([k, v]) => (
              <Fragment key={k}>
                <dt>{k.replaceAll("_", " ")}</dt>
                <dd>
                  {typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)
                    ? when(v)
                    : typeof v === "number" && !Number.isInteger(v)
                      ? v.toFixed(3)
                      : String(v)}
                </dd>
              </Fragment>
            ))}
          </dl>
        );
      }}
    </Show>
  );
}

function VerifyFact({ event, vkey }: { event?: string | undefined; vkey: string }) {
  const [id, setId] = useState(event ?? "");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ProvenEvent | null>(null);
  const [error, setError] = useState<unknown>(null);
  const run = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setResult(null);
    setError(null);
    try {
      const eventId = id.trim();
      if (!vkey) throw new Error("pin the log key first");
      const proof = await getText(`/v1/chain/proofs/inclusion/${encodeURIComponent(eventId)}?format=tlog-proof`);
      setResult(await verifyInclusion(proof, eventId, vkey));
      if (eventId !== event) go("chain", eventId);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={run} class="form" aria-label="Verify a fact">
      <label>
        Event id
        <input name="event_id" required spellcheck={false} value={id} onInput={(e) => setId(e.currentTarget.value)} />
      </label>
      <button type="submit" disabled={busy}>
        {busy ? "Checking…" : "Verify in this browser"}
      </button>
      {error ? (
        <p class="error" role="alert" data-testid="proof-result">
          ✗ Not verified: {describe(error)}
        </p>
      ) : null}
      {result ? (
        <div class="verified" role="status" data-testid="proof-result">
          <p>
            ✓ Verified: event {result.eventId} is entry {result.position} of the log, included in the checkpoint of size{" "}
            {result.treeSize} signed by {result.signer}.
          </p>
          <dl class="facts-list">
            <dt>Event</dt>
            <dd>{result.eventType}</dd>
            <dt>Stream</dt>
            <dd>
              {result.aggregateType}/{result.aggregateId} v{result.streamVersion}
            </dd>
            <dt>By</dt>
            <dd>{result.actor}</dd>
            <dt>Recorded</dt>
            <dd>{result.recordedAt.toLocaleString()}</dd>
            <dt>SHA3-256 of the record</dt>
            <dd>
              <code>{result.digestHex}</code>
            </dd>
          </dl>
          <details>
            <summary>Payload, as recorded</summary>
            <pre tabIndex={0}>{result.payload}</pre>
          </details>
        </div>
      ) : null}
      <p class="muted small">
        Checked here: the record names this event and its position, its SHA3-256 leaf hashes up the inclusion path to
        the checkpoint's root, and the checkpoint's Ed25519 signature verifies with your key. Who wrote the event (its
        commit seal) is checked offline by <code>goosectl verify-proof</code>.
      </p>
    </form>
  );
}

export function Chain({ event }: { event?: string | undefined }) {
  const [vkey, setVkey] = useState(pinnedKey);
  return (
    <>
      <h1>Evidence chain</h1>
      <KeyField value={vkey} onChange={setVkey} />
      <Section title="Newest checkpoint">
        <CheckpointCard vkey={vkey} />
      </Section>
      <Section title="Chain watch">
        <Integrity />
      </Section>
      <Section title="Verify a fact">
        <VerifyFact event={event} vkey={vkey} />
      </Section>
    </>
  );
}
