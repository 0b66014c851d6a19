// Sign-in: a user name and API key (exchanged for a token at once; the key is not kept), or
// the organisation's OpenID provider with authorization code + PKCE (RFC 7636), the provider's
// ID token then exchanged at rbac (RFC 8693). Only the PKCE verifier, state and nonce wait in
// sessionStorage across the provider's redirect; tokens stay in memory.
import { useState } from "preact/hooks";
import { get, signInWithApiKey, signInWithIdToken, type Session } from "../api";
import { ErrorBox, useLoad } from "../ui";

interface SsoIssuer {
  issuer: string;
  client?: { client_id: string; scopes: string[] } | null;
}

interface Pending {
  issuer: string;
  clientId: string;
  tokenEndpoint: string;
  verifier: string;
  state: string;
  nonce: string;
  redirectUri: string;
}

const PENDING = "goose-console-sso";

function random(bytes = 32): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...b))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

async function challenge(verifier: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  return btoa(String.fromCharCode(...d))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

async function discover(issuer: string): Promise<{ authorization_endpoint: string; token_endpoint: string }> {
  const res = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`, { credentials: "omit" });
  if (!res.ok) throw new Error(`${issuer} did not answer its discovery document (HTTP ${res.status})`);
  const doc = (await res.json()) as { issuer: string; authorization_endpoint: string; token_endpoint: string };
  if (doc.issuer !== issuer) throw new Error(`the discovery document names ${doc.issuer}, not ${issuer}`);
  return doc;
}

async function startSso(i: SsoIssuer): Promise<void> {
  if (!i.client) throw new Error(`${i.issuer} has no public client configured for sign-in`);
  const doc = await discover(i.issuer);
  const pending: Pending = {
    issuer: i.issuer,
    clientId: i.client.client_id,
    tokenEndpoint: doc.token_endpoint,
    verifier: random(48),
    state: random(),
    nonce: random(),
    redirectUri: `${location.origin}/`,
  };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(doc.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: pending.clientId,
    redirect_uri: pending.redirectUri,
    scope: (i.client.scopes.length ? i.client.scopes : ["openid"]).join(" "),
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await challenge(pending.verifier),
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

function claims(jwt: string): Record<string, unknown> {
  const part = jwt.split(".")[1] ?? "";
  const json = atob(part.replaceAll("-", "+").replaceAll("_", "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))) as Record<string, unknown>;
}

/** Completes a sign-in the provider redirected back from (`?code=…&state=…`), if any. */
export async function finishSsoIfReturning(): Promise<Session | null> {
  const q = new URLSearchParams(location.search);
  if (!q.has("code") && !q.has("error")) return null;
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname + location.hash);
  if (q.has("error")) {
    throw new Error(`the provider refused the sign-in: ${q.get("error")} ${q.get("error_description") ?? ""}`);
  }
  if (!raw) throw new Error("no sign-in was started from this tab: start again");
  const p = JSON.parse(raw) as Pending;
  if (q.get("state") !== p.state)
    throw new Error("the provider's answer does not match the sign-in started here (state)");
  const res = await fetch(p.tokenEndpoint, {
    method: "POST",
    credentials: "omit",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: q.get("code") ?? "",
      redirect_uri: p.redirectUri,
      client_id: p.clientId,
      code_verifier: p.verifier,
    }),
  });
  const body = (await res.json().catch(() => ({}))) as {
    id_token?: string;
    error?: string;
    error_description?: string;
  };
  if (!res.ok || !body.id_token) {
    throw new Error(
      `the provider did not issue an ID token: ${body.error ?? res.status} ${body.error_description ?? ""}`,
    );
  }
  if (claims(body.id_token).nonce !== p.nonce) throw new Error("the ID token's nonce is not this sign-in's");
  // rbac checks the token's signature, issuer, audience and expiry.
  return signInWithIdToken(body.id_token);
}

export function SignIn({ onSignedIn, onAttempt }: { onSignedIn: (s: Session) => void; onAttempt: () => void }) {
  const [user, setUser] = useState("");
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const issuers = useLoad(() => get<SsoIssuer[]>("/v1/auth/sso"), []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    onAttempt();
    try {
      const s = await signInWithApiKey(user.trim(), key.trim());
      setKey("");
      onSignedIn(s);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="signin">
      <h1>Sign in</h1>
      {(issuers.data ?? [])
        .filter((i) => i.client)
        .map((i) => (
          <p key={i.issuer}>
            <button
              type="button"
              onClick={() => {
                onAttempt();
                startSso(i).catch((err: unknown) => setError(err));
              }}
            >
              Sign in with {new URL(i.issuer).host}
            </button>
          </p>
        ))}
      <form onSubmit={submit} aria-label="Sign in with an API key">
        <label>
          User name
          <input
            name="user"
            autocomplete="username"
            required
            value={user}
            onInput={(e) => setUser(e.currentTarget.value)}
          />
        </label>
        <label>
          API key
          <input
            name="api_key"
            type="password"
            autocomplete="current-password"
            required
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in with API key"}
        </button>
      </form>
      <ErrorBox error={error} />
      <p class="muted small">
        Your token stays in this tab's memory: reloading the page or closing the tab signs you out.
      </p>
    </div>
  );
}
