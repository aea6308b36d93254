// A real OpenID Connect provider for Switchboard's sign-in tests: the certified `oidc-provider`
// on 127.0.0.1 and a free port, with clients and accounts from the OIDC_CONFIG environment
// variable (JSON):
//   {"clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
//    "accounts": [{"login", "password", "claims": {"sub", "email", "name", "groups"}}]}
//
// Its own sign-in page is a plain form (GET /interaction/UID, POST /interaction/UID/login with
// `login` and `password`, form-urlencoded), so a test can sign in without a browser; consent is
// granted with the sign-in (a wrong password gets 403 "invalid credentials"). Prints
// `listening http://127.0.0.1:PORT` on stdout once ready; exits on SIGTERM or SIGINT.
import http from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_CONFIG ?? '{}');
const clients = config.clients ?? [];
const accounts = config.accounts ?? [];
for (const a of accounts) {
  if (typeof a.login !== 'string' || typeof a.password !== 'string' || typeof a.claims?.sub !== 'string') {
    throw new Error('OIDC_CONFIG: every account needs login, password and claims.sub');
  }
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const SCOPES = 'openid email profile groups';

const provider = new Provider(issuer, {
  clients: clients.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  scopes: SCOPES.split(' '),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  // Put what the scopes grant in the ID token itself, as Keycloak and Entra ID do.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['switchboard-test-only'] },
  async findAccount(_ctx, id) {
    const account = accounts.find((a) => a.claims.sub === id);
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ ...account.claims, sub: id }) };
  },
});
provider.proxy = false;
const callback = provider.callback();

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

// Grants everything the authorization request asks for, so the consent prompt never needs a
// round trip of its own.
async function grantAll(details, accountId) {
  const clientId = details.params.client_id;
  let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  if (!grant || grant.accountId !== accountId) grant = new provider.Grant({ accountId, clientId });
  grant.addOIDCScope(details.params.scope ?? SCOPES);
  const missing = details.prompt.details ?? {};
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.end(body);
}

async function interaction(req, res, step) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && !step) {
    // Already signed in, only consent missing: grant it and go straight back.
    if (details.prompt.name === 'consent' && details.session?.accountId) {
      const grantId = await grantAll(details, details.session.accountId);
      await provider.interactionFinished(req, res, { consent: { grantId } },
        { mergeWithLastSubmission: true });
      return;
    }
    send(res, 200, `<!doctype html><title>Sign in</title>
<form method="post" action="/interaction/${details.uid}/login">
<input name="login"> <input name="password" type="password"> <button>Sign in</button>
</form>\n`, 'text/html; charset=utf-8');
    return;
  }
  if (req.method === 'POST' && step === 'login') {
    const form = await readForm(req);
    const account = accounts.find(
      (a) => a.login === form.get('login') && a.password === form.get('password'),
    );
    if (!account) {
      send(res, 403, 'invalid credentials');
      return;
    }
    const accountId = account.claims.sub;
    const grantId = await grantAll(details, accountId);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  send(res, 405, 'method not allowed');
}

server.on('request', (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  const m = /^\/interaction\/([^/]+)(?:\/(login))?\/?$/.exec(path);
  if (!m) {
    callback(req, res);
    return;
  }
  interaction(req, res, m[2]).catch((e) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // e.g. SessionNotFound (unknown or expired interaction, missing cookie): 400.
    send(res, e.statusCode ?? 500, `${e.name}: ${e.error_description ?? e.message}\n`);
  });
});

process.stdout.write(`listening ${issuer}\n`);

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
