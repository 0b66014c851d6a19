// The approvals inbox: pending requests with what they are for, approve or reject with a
// comment. Refusals (segregation of duties, the owning-team rule) are shown as the API words
// them; the rules live in rbac, never here.
import { useState } from "preact/hooks";
import { can, get, send, type Session } from "../api";
import { href } from "../router";
import { Badge, Empty, ErrorBox, Section, Show, useLoad } from "../ui";

interface Approval {
  id: string;
  status: string;
  kind?: string | null;
  subject: string;
  impact?: string | null;
  requester: string;
  reason: string;
  required_approvers: number;
  approvers: string[];
  owner_teams?: string[];
  rejected_by?: string | null;
  rejection_reason?: string | null;
  refusals: number;
}

/** The permission deciding a request of each kind needs (rbac's rule; the API enforces it). */
const APPROVE: Record<string, string> = {
  promotion: "promotion.approve",
  model_deployment: "model.approve",
  use_case: "usecase.approve",
};

function flat(v: Record<string, unknown>): Approval {
  const inner = (v.request ?? {}) as Record<string, unknown>;
  return { ...inner, ...v } as unknown as Approval;
}

function Subject({ a }: { a: Approval }) {
  const m = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(a.subject);
  if ((a.kind ?? "promotion") === "promotion" && m) {
    return <a href={href("promotions", m[0])}>{a.subject}</a>;
  }
  return <span>{a.subject}</span>;
}

function Decide({ a, onDone }: { a: Approval; onDone: (said: string) => void }) {
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const act = async (verb: "grant" | "reject") => {
    setBusy(true);
    setError(null);
    try {
      const after = flat(await send<Record<string, unknown>>("POST", `/v1/approvals/${a.id}/${verb}`, { comment }));
      setComment("");
      onDone(
        verb === "grant"
          ? `Approved ${a.subject} (${after.approvers.length} of ${after.required_approvers} approvals, now ${after.status}).`
          : `Rejected ${a.subject}.`,
      );
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const id = `comment-${a.id}`;
  return (
    <div class="decide">
      <label for={id}>Comment</label>
      <textarea
        id={id}
        rows={2}
        value={comment}
        aria-describedby={`${id}-hint`}
        onInput={(e) => setComment(e.currentTarget.value)}
      />
      <span class="hint" id={`${id}-hint`}>
        Optional when approving; a rejection needs one (it is recorded as the reason).
      </span>
      <div class="buttons">
        <button type="button" disabled={busy} onClick={() => act("grant")}>
          Approve
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy || comment.trim() === ""}
          onClick={() => act("reject")}
          title="A rejection needs a reason"
        >
          Reject
        </button>
      </div>
      <ErrorBox error={error} />
    </div>
  );
}

function Card({ a, session, onDone }: { a: Approval; session: Session; onDone: (said: string) => void }) {
  return (
    <article class="card" data-approval={a.id} aria-label={`Approval request ${a.subject}`}>
      <h3>
        <Subject a={a} /> <Badge value={a.status} />
      </h3>
      <dl class="facts-list">
        <dt>Kind</dt>
        <dd>{a.kind ?? "promotion"}</dd>
        <dt>Requested by</dt>
        <dd>{a.requester}</dd>
        <dt>Reason</dt>
        <dd>{a.reason || "—"}</dd>
        <dt>Impact</dt>
        <dd>{a.impact ?? "—"}</dd>
        <dt>Approvals</dt>
        <dd>
          {a.approvers.length} of {a.required_approvers}
          {a.approvers.length ? ` (${a.approvers.join(", ")})` : ""}
        </dd>
        {a.owner_teams?.length ? (
          <>
            <dt>Owning teams</dt>
            <dd>{a.owner_teams.join(", ")}</dd>
          </>
        ) : null}
        {a.refusals ? (
          <>
            <dt>Refused attempts</dt>
            <dd>{a.refusals}</dd>
          </>
        ) : null}
        {a.rejected_by ? (
          <>
            <dt>Rejected by</dt>
            <dd>
              {a.rejected_by}: {a.rejection_reason}
            </dd>
          </>
        ) : null}
      </dl>
      {a.status === "pending" && can(session, APPROVE[a.kind ?? "promotion"] ?? "promotion.approve") ? (
        <Decide a={a} onDone={onDone} />
      ) : null}
    </article>
  );
}

export function Approvals({ session }: { session: Session }) {
  const [said, setSaid] = useState<string | null>(null);
  const loaded = useLoad(async () => (await get<Record<string, unknown>[]>("/v1/approvals")).map(flat), [], 3000);
  return (
    <>
      <h1>Approvals</h1>
      <p role="status" data-testid="decision" class={said ? "verified" : "sr-only"}>
        {said ?? ""}
      </p>
      <Show loaded={loaded}>
        {(list) => {
          const pending = list.filter((a) => a.status === "pending");
          const decided = list.filter((a) => a.status !== "pending");
          return (
            <>
              <Section title={`Waiting for a decision (${pending.length})`}>
                {pending.length ? (
                  pending.map((a) => (
                    <Card
                      key={a.id}
                      a={a}
                      session={session}
                      onDone={(m) => {
                        setSaid(m);
                        loaded.reload();
                      }}
                    />
                  ))
                ) : (
                  <Empty>Nothing waits for an approval.</Empty>
                )}
              </Section>
              <Section title="Decided">
                {decided.length ? (
                  decided.map((a) => (
                    <Card
                      key={a.id}
                      a={a}
                      session={session}
                      onDone={(m) => {
                        setSaid(m);
                        loaded.reload();
                      }}
                    />
                  ))
                ) : (
                  <Empty>No decisions yet.</Empty>
                )}
              </Section>
            </>
          );
        }}
      </Show>
    </>
  );
}
