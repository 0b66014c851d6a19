// A certified OpenID provider (panva/oidc-provider) for the tests: the identity provider an
// organisation runs, started for real. Configuration comes from the environment:
//   PORT            where it listens (127.0.0.1); the issuer is http://127.0.0.1:PORT
//   GOOSE_OIDC_DIR  its state: keys.json (private JWKs, created on first start) and
//                   accounts.json ({login: {sub, name, groups}}, read at every sign-in)
//   GOOSE_OIDC_ROTATE  "add": a new RSA key signs from now on (the old one still published);
//                   "retire": only the newest RSA key stays published
// Interactions (the login and consent pages) answer JSON: GET /interaction/<uid> names the
// prompt; POST /interaction/<uid>/login with `login=<name>` signs that account in, and
// POST /interaction/<uid>/confirm is the consent button.
import Provider from 'oidc-provider';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const port = Number(process.env.PORT);
const dir = process.env.GOOSE_OIDC_DIR;
const issuer = `http://127.0.0.1:${port}`;
const keysFile = path.join(dir, 'keys.json');
const accountsFile = path.join(dir, 'accounts.json');

function newKey(type, alg) {
  const { privateKey } = type === 'rsa'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : type === 'ec'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : crypto.generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `${alg}-${crypto.randomUUID()}`, alg, use: 'sig' };
}

let keys = fs.existsSync(keysFile)
  ? JSON.parse(fs.readFileSync(keysFile, 'utf8'))
  : [newKey('rsa', 'RS256'), newKey('ec', 'ES256'), newKey('ed25519', 'EdDSA')];
if (process.env.GOOSE_OIDC_ROTATE === 'add') {
  keys = [newKey('rsa', 'RS256'), ...keys];
} else if (process.env.GOOSE_OIDC_ROTATE === 'retire') {
  const newest = keys.find((k) => k.alg === 'RS256');
  keys = keys.filter((k) => k.alg !== 'RS256' || k === newest);
}
fs.writeFileSync(keysFile, JSON.stringify(keys));

function accounts() {
  return JSON.parse(fs.readFileSync(accountsFile, 'utf8'));
}

const nativeClient = (clientId, alg) => ({
  client_id: clientId,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback'],
  id_token_signed_response_alg: alg,
});

const provider = new Provider(issuer, {
  clients: [
    nativeClient('goosectl', 'RS256'),
    nativeClient('goosectl-es256', 'ES256'),
    nativeClient('goosectl-eddsa', 'EdDSA'),
    // The web console (a public client in the browser; loopback redirect to its origin).
    { ...nativeClient('goose-console', 'RS256'), redirect_uris: ['http://127.0.0.1/'] },
    {
      client_id: 'ci-payments-main',
      client_secret: 'ci-payments-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
      scope: 'deploy',
    },
  ],
  jwks: { keys },
  cookies: { keys: ['goose-test-cookie-key'] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'groups', 'deploy'],
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  // The console redeems its code from the browser: the token endpoint answers cross-origin.
  clientBasedCORS: () => true,
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'] },
  ttl: { IdToken: 600, AccessToken: 600, ClientCredentials: 600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:golden-goose:api',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'deploy',
        audience: 'golden-goose',
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const entry = Object.entries(accounts()).find(([, a]) => a.sub === sub);
    if (!entry) return undefined;
    const [login, a] = entry;
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: login, name: a.name ?? login, groups: a.groups ?? [] };
      },
    };
  },
});

const callback = provider.callback();

function body(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

http.createServer(async (req, res) => {
  const m = req.url.match(/^\/interaction\/([^/?]+)(\/login|\/confirm)?/);
  if (!m) {
    callback(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET' && (req.headers.accept ?? '').includes('text/html')) {
      // A browser (the console's e2e): the login and consent pages as plain forms.
      const form = details.prompt.name === 'login'
        ? `<form method="post" action="/interaction/${details.uid}/login">
             <label>Login <input name="login" autocomplete="username"></label>
             <button type="submit">Sign in</button></form>`
        : `<form method="post" action="/interaction/${details.uid}/confirm">
             <p>${details.params.client_id} asks for ${details.params.scope}</p>
             <button type="submit">Continue</button></form>`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><html lang="en"><title>Test provider</title><main><h1>Test provider</h1>${form}</main></html>`);
      return;
    }
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ uid: details.uid, prompt: details.prompt.name }));
      return;
    }
    if (m[2] === '/confirm') {
      // The consent button: grant what the client asked for.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ clientId: details.params.client_id, accountId: details.session.accountId });
      grant.addOIDCScope(details.params.scope);
      grant.addOIDCClaims(['preferred_username', 'name', 'groups']);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    const login = (await body(req)).get('login');
    const account = accounts()[login];
    if (!account) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no account ${login}` }));
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: account.sub } },
      { mergeWithLastSubmission: false },
    );
  } catch (e) {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: String(e) }));
  }
}).listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening at ${issuer}`);
});
