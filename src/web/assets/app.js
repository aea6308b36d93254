// The receptionist's page: sign-in, then search as you type with live presence.
const q = document.getElementById('q');
const results = document.getElementById('results');
const status = document.getElementById('status');
let seq = 0;
let live = null;
let csrf = null;
let peers = false;

// Presence: a dot per person, kept current from the server's event stream.
function paintDot(dot, presence) {
  dot.className = 'dot ' + presence.availability + (presence.idle ? ' idle' : '');
  dot.title = presence.availability.replaceAll('_', ' ') + (presence.status_message ? ' — ' + presence.status_message : '');
}

let peerStreams = [];

function watch(url) {
  const source = new EventSource(url);
  source.addEventListener('presence', (e) => {
    const change = JSON.parse(e.data);
    const dot = results.querySelector('li[data-id="' + change.id + '"] .dot');
    if (dot) paintDot(dot, change.presence);
  });
  return source;
}

// Ours from our stream; each partner's from theirs, relayed by our server.
function follow(ids, theirs) {
  if (live) { live.close(); live = null; }
  for (const s of peerStreams) s.close();
  peerStreams = [];
  if (ids.length) live = watch('/api/v1/presence/stream?ids=' + ids.join(','));
  for (const [peer, peerIds] of Object.entries(theirs || {})) {
    if (peerIds.length) {
      peerStreams.push(watch('/api/v1/peers/' + encodeURIComponent(peer) + '/presence/stream?ids=' + peerIds.join(',')));
    }
  }
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render(data) {
  results.replaceChildren();
  // Partners' people follow ours, each labelled with their company; a peer that failed is a note.
  const theirs = [];
  const notes = [];
  for (const peer of data.peers || []) {
    if (peer.note) notes.push(peer.peer + ': ' + peer.note);
    for (const p of peer.items) theirs.push(Object.assign({}, p, { theirs: true, peer: peer.peer }));
  }
  for (const p of data.items.concat(theirs)) {
    const li = el('li');
    li.dataset.id = p.id;
    const name = el('div', 'name');
    if (p.presence) { const dot = el('span'); paintDot(dot, p.presence); name.appendChild(dot); }
    name.appendChild(document.createTextNode(p.display_name));
    if (p.nicknames && p.nicknames.length) {
      name.appendChild(el('span', 'nick', ' “' + p.nicknames.join('”, “') + '”'));
    }
    if (p.theirs) li.classList.add('partner');
    li.appendChild(name);
    li.appendChild(el('div', 'meta', [p.theirs ? p.organization : null, p.title, p.department, p.location].filter(Boolean).join(' · ')));
    const contact = el('div', 'contact');
    for (const ph of p.phones) {
      // A number kept as written (valid: false) is dialled by its digits, and says so.
      const dial = ph.e164 || (ph.raw || ph.display).replace(/[^0-9+*#]/g, '');
      const a = el(dial ? 'a' : 'span');
      if (dial) a.href = 'tel:' + dial;
      a.appendChild(el('span', 'kind', ph.kind));
      a.appendChild(document.createTextNode(ph.display));
      if (ph.valid === false) {
        a.classList.add('unverified');
        a.title = 'kept as the source wrote it: not a number the numbering plan knows';
      }
      contact.appendChild(a);
    }
    for (const m of p.emails) {
      const a = el('a', null, m);
      a.href = 'mailto:' + m;
      contact.appendChild(a);
    }
    li.appendChild(contact);
    results.appendChild(li);
  }
  const byPeer = {};
  for (const p of theirs) if (p.presence) (byPeer[p.peer] = byPeer[p.peer] || []).push(p.id);
  follow(data.items.filter((p) => p.presence).map((p) => p.id), byPeer);
  status.textContent = data.total === 1 ? '1 person'
    : data.total.toLocaleString() + (data.total_exact ? '' : '+') + ' people';
  if (theirs.length) status.textContent += ' · ' + theirs.length + ' at partners';
  if (notes.length) status.textContent += ' · ' + notes.join('; ');
}

async function search() {
  const mine = ++seq;
  const started = performance.now();
  try {
    // Partners are asked only for what was typed (they do not list their people).
    const asked = peers && q.value.trim().length >= 3 ? '&peers=all' : '';
    const r = await fetch('/api/v1/people?limit=25&q=' + encodeURIComponent(q.value) + asked);
    if (r.status === 401) { showSignIn(); return; }
    const data = await r.json();
    if (mine !== seq) return;
    if (!r.ok) { status.textContent = data.detail || 'Search failed'; results.replaceChildren(); return; }
    render(data);
    status.textContent += ' · ' + Math.round(performance.now() - started) + ' ms';
  } catch (e) {
    if (mine === seq) status.textContent = 'Cannot reach the server';
  }
}

function showApp(me) {
  csrf = me.csrf_token || null;
  peers = (me.peers || []).length > 0;
  document.getElementById('banner').hidden = !me.open;
  document.getElementById('who').textContent = me.open ? '' : me.display_name + ' (' + me.role + ')';
  document.getElementById('signout').hidden = me.open || me.kind !== 'staff';
  document.getElementById('signin').hidden = true;
  document.getElementById('app').hidden = false;
  q.focus();
  search();
}

async function showSignIn() {
  if (live) { live.close(); live = null; }
  document.getElementById('app').hidden = true;
  document.getElementById('signout').hidden = true;
  document.getElementById('who').textContent = '';
  document.getElementById('signin').hidden = false;
  try {
    const methods = await (await fetch('/api/v1/auth/methods')).json();
    document.getElementById('sso').hidden = !methods.oidc;
  } catch (e) { /* the form still works */ }
  document.getElementById('username').focus();
}

document.getElementById('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = document.getElementById('signin-error');
  error.textContent = '';
  const r = await fetch('/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      username: document.getElementById('username').value,
      password: document.getElementById('password').value,
    }),
  });
  const body = await r.json();
  if (!r.ok) { error.textContent = body.detail || 'Sign-in failed'; return; }
  document.getElementById('password').value = '';
  showApp(body);
});

document.getElementById('signout').addEventListener('click', async () => {
  await fetch('/api/v1/auth/logout', { method: 'POST', headers: csrf ? { 'x-csrf-token': csrf } : {} });
  showSignIn();
});

q.addEventListener('input', search);

(async () => {
  const r = await fetch('/api/v1/auth/session');
  if (r.ok) showApp(await r.json()); else showSignIn();
})();
