// A real OpenID Connect provider for Switchboard's sign-in tests: the certified `oidc-provider`
// on 127.0.0.1 and a free port, with clients and accounts from the OIDC_CONFIG environment
// variable (JSON: {"clients": [{client_id, client_secret, redirect_uris}],
// "accounts": [{login, password, claims: {sub, email, name, groups}}]}).
//
// Its own sign-in page is a plain form (GET /interaction/UID, POST /interaction/UID/login with
// `login` and `password`), so a test can sign in without a browser; consent is granted with the
// sign-in. Prints `listening http://127.0.0.1:PORT` once ready; exits on SIGTERM.
import http from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_CONFIG ?? '{}');
const accounts = config.accounts ?? [];

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: (config.clients ?? []).map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
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
const callback = provider.callback();

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

async function interaction(req, res) {
  const [, , uid, step] = new URL(req.url, issuer).pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && !step) {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><form method="post" action="/interaction/${uid}/login">
      <input name="login"><input name="password" type="password"><button>Sign in</button></form>`);
    return;
  }
  if (req.method === 'POST' && step === 'login') {
    const form = await readForm(req);
    const account = accounts.find(
      (a) => a.login === form.get('login') && a.password === form.get('password'),
    );
    if (!account) {
      res.statusCode = 403;
      res.end('invalid credentials');
      return;
    }
    const accountId = account.claims.sub;
    const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  res.statusCode = 404;
  res.end();
}

server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => {
      res.statusCode = 500;
      res.end(String(e));
    });
  } else {
    callback(req, res);
  }
});

process.stdout.write(`listening ${issuer}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
