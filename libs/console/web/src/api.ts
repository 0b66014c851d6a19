// The REST API of the same origin, with the signed-in user's bearer token. The token lives in
// this module's memory only (never localStorage or a readable cookie): a reload signs out.

/** A refusal or failure as the API words it (RFC 9457 problem+json). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

export interface Session {
  user: string;
  roles: string[];
  permissions: string[];
  teams: string[];
  /** Unix seconds when the token expires. */
  expiresAt: number;
  /** How the user signed in. */
  via: "api-key" | "sso";
}

let token: string | null = null;
let onExpired: (() => void) | null = null;

export function setToken(t: string | null): void {
  token = t;
}

/** Called when the API answers 401 to a signed-in user (expired or revoked token). */
export function onUnauthorized(f: () => void): void {
  onExpired = f;
}

async function problem(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const p = JSON.parse(text) as { title?: string; detail?: string };
    return new ApiError(res.status, p.title ?? res.statusText, p.detail ?? "");
  } catch {
    return new ApiError(res.status, res.statusText || `HTTP ${res.status}`, text.slice(0, 300));
  }
}

export async function request(
  method: string,
  path: string,
  body?: unknown,
  init: { raw?: BodyInit; contentType?: string; anonymous?: boolean } = {},
): Promise<Response> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (token && !init.anonymous) headers.authorization = `Bearer ${token}`;
  let payload: BodyInit | undefined;
  if (init.raw !== undefined) {
    payload = init.raw;
    if (init.contentType) headers["content-type"] = init.contentType;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: "omit" });
  if (!res.ok) {
    if (res.status === 401 && token && !init.anonymous && onExpired) onExpired();
    throw await problem(res);
  }
  return res;
}

export async function get<T>(path: string): Promise<T> {
  return (await request("GET", path)).json() as Promise<T>;
}

export async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await request(method, path, body);
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export async function getText(path: string): Promise<string> {
  return (await request("GET", path)).text();
}

/** Downloads `path` as a file named `name` (through a blob URL: the token never leaves memory). */
export async function download(path: string, name: string): Promise<void> {
  const blob = await (await request("GET", path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

interface WhoAmI {
  user: string;
  roles: string[];
  permissions: string[];
  teams?: string[];
}

interface Issued {
  access_token: string;
  expires_in: number;
}

async function session(issued: Issued, via: Session["via"]): Promise<Session> {
  setToken(issued.access_token);
  try {
    const me = await get<WhoAmI>("/v1/auth/whoami");
    return {
      user: me.user,
      roles: me.roles,
      permissions: me.permissions,
      teams: me.teams ?? [],
      expiresAt: Date.now() / 1000 + issued.expires_in,
      via,
    };
  } catch (e) {
    setToken(null);
    throw e;
  }
}

/** Signs in with a user name and API key: the key buys a token and is then forgotten. */
export async function signInWithApiKey(user: string, apiKey: string): Promise<Session> {
  const res = await request("POST", "/v1/auth/token", { user, api_key: apiKey }, { anonymous: true });
  return session((await res.json()) as Issued, "api-key");
}

/** Exchanges a provider's ID token for a Golden Goose token (RFC 8693, rbac). */
export async function signInWithIdToken(idToken: string): Promise<Session> {
  const res = await request(
    "POST",
    "/v1/auth/sso/token",
    {
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: idToken,
      subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
    },
    { anonymous: true },
  );
  return session((await res.json()) as Issued, "sso");
}

export function signOut(): void {
  setToken(null);
}

export function can(s: Session | null, permission: string): boolean {
  return s !== null && s.permissions.includes(permission);
}
