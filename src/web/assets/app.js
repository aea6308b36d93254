// Switchboard's receptionist console: sign-in, search as you type, the person card, the org
// chart, the board of favourites, live presence, and the admin area. Keyboard first.
import { strings, t } from './strings.js';
import { h, byId } from './dom.js';
import { createApi, isAbort } from './api.js';
import { decodeState, encodeState, searchQuery, searchKey } from './lib/url-state.js';
import { createLatest } from './lib/latest.js';
import { createLive } from './lib/live.js';
import { backoffDelay } from './lib/backoff.js';
import { actionFor, whereOf, moveSelection } from './lib/keys.js';
import { bestPhone, mobilePhone, firstEmail, copyString } from './lib/dial.js';
import { hhmm } from './lib/time.js';
import { isSimulated } from './lib/presence.js';
import { MAX_TEAMS, hasTeam, toggleTeam as toggledTeams, teamPin, favouritesBody, boardPeople } from './lib/teams.js';
import { paintPresence, refreshAges, keyOf } from './ui/person.js';
import { resultRow, markSelected, countText, renderFacets, renderPartners } from './ui/results.js';
import { renderCard, channelsTable } from './ui/card.js';
import { renderOrg } from './ui/org.js';
import { renderBoard, paintTeamCounts } from './ui/board.js';
import { createAdmin } from './ui/admin.js';

const CARD_REFRESH_MS = 15000;
const AGE_REFRESH_MS = 30000;

const el = {
  q: byId('q'), results: byId('results'), facets: byId('facets'), count: byId('count'), partners: byId('partners'),
  detail: byId('detail'), directory: byId('directory'), app: byId('app'), signin: byId('signin'), admin: byId('admin'),
  boardList: byId('board-list'), boardTeams: byId('board-teams'), boardEmpty: byId('board-empty'), boardCount: byId('board-count'), board: byId('board'),
  nav: byId('nav'), navAdmin: byId('nav-admin'), who: byId('who'), signout: byId('signout'), help: byId('help'),
  helpButton: byId('help-button'), toast: byId('toast'), connBanner: byId('conn-banner'), openBanner: byId('open-banner'),
  live: byId('live'), liveText: byId('live-text'), simulated: byId('simulated'),
};

const app = {
  session: null,
  state: decodeState(location.search),
  results: [],
  selected: -1,
  renderedKey: null,
  card: null, // {person, team}
  org: null, // {person, team}
  favourites: [],
  teams: [], // pinned teams: {lead, members, members_total}
  favouritesEnabled: true,
  presence: new Map(),
  lost: false,
  lostAt: null,
  simulated: false,
  admin: null,
  timers: [],
};

// Words into the page ------------------------------------------------------------------------

function fillTexts(root = document) {
  for (const node of root.querySelectorAll('[data-t]')) node.textContent = t(node.dataset.t);
  for (const node of root.querySelectorAll('[data-t-placeholder]')) node.placeholder = t(node.dataset.tPlaceholder);
  for (const node of root.querySelectorAll('[data-t-aria-label]')) node.setAttribute('aria-label', t(node.dataset.tAriaLabel));
  for (const node of root.querySelectorAll('[data-t-title]')) node.title = t(node.dataset.tTitle);
  document.title = t('pageTitle');
  byId('help-list').replaceChildren(...strings.shortcuts.flatMap(([key, what]) => [h('dt', null, h('kbd', null, key)), h('dd', null, what)]));
}

// The API, and what a failure means ----------------------------------------------------------

const api = createApi({
  csrf: () => (app.session && app.session.csrf_token) || null,
  onUnauthorized: () => { if (app.session) showSignIn(t('sessionEnded')); },
  onUnreachable: () => connectionLost(),
});

function errorText(e) {
  if (!e) return t('loadFailed');
  if (e.status === 0) return t('connectionLost', { time: hhmm(app.lostAt || new Date()) });
  return e.detail || e.message || t('loadFailed');
}

// Presence -----------------------------------------------------------------------------------

function presenceOf(person) {
  const key = keyOf(person);
  if (app.presence.has(key)) return app.presence.get(key);
  return person.presence || null;
}

function noteSimulated(presence) {
  if (!app.simulated && isSimulated(presence)) {
    app.simulated = true;
    el.simulated.hidden = false;
  }
}

/** Keeps what a response said of someone's presence, unless the stream told us something newer. */
function storePresence(person) {
  if (!person || person.presence === undefined) return;
  const key = keyOf(person);
  const old = app.presence.get(key);
  const fresh = person.presence;
  if (old && fresh && old.observed_at && fresh.observed_at && Date.parse(old.observed_at) > Date.parse(fresh.observed_at)) return;
  app.presence.set(key, fresh);
  noteSimulated(fresh);
}

function paintKey(key) {
  const presence = app.presence.get(key) || null;
  for (const node of document.querySelectorAll('[data-pkey]')) {
    if (node.dataset.pkey === key) paintPresence(node, presence);
  }
  if (app.card && keyOf(app.card.person) === key) {
    const table = byId('card-presence-table');
    if (table) table.replaceChildren(channelsTable({ ...app.card.person, presence }, ctx));
  }
}

const live = createLive({
  EventSourceImpl: window.EventSource,
  onPresence(key, presence) {
    app.presence.set(key, presence);
    noteSimulated(presence);
    paintKey(key);
    if (app.teams.length) paintTeamCounts(el.boardTeams, app.teams, ctx);
  },
  onNotes(change) {
    // An absence note set or cleared (here or on another console): show it where they are.
    if (app.card && app.card.person.id === change.id) reloadCard();
    if (app.results.some((p) => p.id === change.id)) runSearch();
    loadFavourites();
  },
  onOpen(peer) {
    if (peer) return;
    streamRetries = 0;
    // A note set between loading the card and a stream that follows them would otherwise wait
    // for the next refresh: read the card again, once, when the first such stream opens.
    const covered = !!app.card && live.openIds().includes(app.card.person.id);
    if (covered && app.cardFollowed !== app.card.person.id) reloadCard();
    app.cardFollowed = covered ? app.card.person.id : null;
  },
  onError(peer, opened) {
    if (opened) { connectionLost(); return; }
    // Refused before it opened: lost connection, or the server said no (too many streams)?
    fetch('/api/v1/auth/session', { cache: 'no-store' }).then((r) => {
      if (r.status === 401) { showSignIn(t('sessionEnded')); return; }
      live.stop();
      const wait = backoffDelay(streamRetries++, { base: 2000, max: 30000 });
      setTimeout(() => { if (!app.lost && app.session) live.restart(); }, wait);
    }, () => connectionLost());
  },
});
let streamRetries = 0;

/** Follows everyone on the page: results, card, team, org chart, board (one stream for all). */
function followShown() {
  if (!app.session) return;
  const ours = new Set();
  const peers = {};
  for (const node of document.querySelectorAll('[data-pkey]')) {
    const key = node.dataset.pkey;
    if (app.presence.get(key) === null) continue; // no presence channel: nothing to follow
    const slash = key.indexOf('/');
    if (slash < 0) ours.add(key);
    else (peers[key.slice(0, slash)] = peers[key.slice(0, slash)] || []).push(key.slice(slash + 1));
  }
  live.follow([...ours], peers);
}

// Connection lost, and back -----------------------------------------------------------------

let probeAttempt = 0;
let probeTimer = null;

function connectionLost() {
  if (app.lost || !app.session) return;
  app.lost = true;
  app.lostAt = new Date();
  app.cardFollowed = null;
  live.stop();
  document.body.classList.add('is-stale');
  el.connBanner.textContent = t('connectionLost', { time: hhmm(app.lostAt) });
  el.connBanner.hidden = false;
  el.liveText.textContent = t('liveLost');
  el.live.classList.add('is-lost');
  probeAttempt = 0;
  scheduleProbe();
}

function scheduleProbe() {
  clearTimeout(probeTimer);
  probeTimer = setTimeout(probe, backoffDelay(probeAttempt++, { base: 1000, max: 15000 }));
}

async function probe() {
  if (!app.lost) return;
  let r;
  try {
    r = await fetch('/api/v1/auth/session', { cache: 'no-store', credentials: 'same-origin' });
  } catch {
    scheduleProbe();
    return;
  }
  if (r.status === 401) { connectionBack(); showSignIn(t('sessionEnded')); return; }
  if (!r.ok) { scheduleProbe(); return; }
  try { app.session = await r.json(); } catch { scheduleProbe(); return; }
  connectionBack();
  refreshAll();
}

function connectionBack() {
  clearTimeout(probeTimer);
  app.lost = false;
  document.body.classList.remove('is-stale');
  el.connBanner.hidden = true;
  el.connBanner.textContent = '';
  el.liveText.textContent = t('liveOk');
  el.live.classList.remove('is-lost');
}

/** After a reconnect: everything anew (the server may have restarted and forgotten presence). */
function refreshAll() {
  app.presence.clear();
  live.restart();
  runSearch();
  if (app.org) showOrg(app.org.person.id, { focus: false });
  else if (app.card) reloadCard(true);
  loadFavourites();
  if (app.state.view === 'admin' && app.admin) app.admin.load();
}

// Search --------------------------------------------------------------------------------------

const searches = createLatest();
const facetCounts = createLatest();
const FACETS_AFTER_MS = 150;
let facetTimer = null;

function syncUrl() {
  const url = location.pathname + encodeState(app.state);
  if (url !== location.pathname + location.search) history.replaceState(null, '', url);
}

/** The facet chips' counts, asked beside the results (so that results never wait for them). */
async function runFacets(state) {
  const ticket = facetCounts.begin();
  try {
    const data = await api.get('/api/v1/people' + searchQuery(state, { facets: true }), { signal: ticket.signal });
    if (facetCounts.isCurrent(ticket)) {
      renderFacets(el.facets, data.facets, state, ctx);
      el.facets.dataset.query = state.q;
    }
  } catch { /* the chips keep their last counts; the results say what went wrong */ }
}

async function runSearch() {
  const state = { ...app.state };
  const key = searchKey(state);
  const ticket = searches.begin();
  // Counts follow a pause in typing: while keys come, the results have the machine to
  // themselves (a first letter's counts read every match).
  clearTimeout(facetTimer);
  facetTimer = setTimeout(() => runFacets(state), FACETS_AFTER_MS);
  const peers = !!(app.session && app.session.peers && app.session.peers.length);
  el.results.setAttribute('aria-busy', 'true');
  try {
    const data = await api.get('/api/v1/people' + searchQuery(state, { peers }), { signal: ticket.signal });
    if (!searches.isCurrent(ticket)) return;
    renderSearch(data, state, key);
  } catch (e) {
    if (isAbort(e) || !searches.isCurrent(ticket)) return;
    el.results.removeAttribute('aria-busy');
    if (e.status !== 401) el.count.textContent = errorText(e);
  }
}

function renderSearch(data, state, key) {
  const keepId = app.selected >= 0 && app.results[app.selected] ? app.results[app.selected].id : null;
  app.results = data.items || [];
  for (const p of app.results) storePresence(p);
  let theirs = 0;
  for (const peer of data.peers || []) {
    for (const p of peer.items || []) { storePresence({ ...p, peer: peer.peer }); theirs += 1; }
  }
  let selected = app.results.length ? 0 : -1;
  if (keepId && key === app.renderedKey) {
    const i = app.results.findIndex((p) => p.id === keepId);
    if (i >= 0) selected = i;
  }
  app.selected = selected;
  el.results.replaceChildren(...app.results.map((p, i) => resultRow(p, ctx, i === selected)));
  el.results.removeAttribute('aria-busy');
  renderPartners(el.partners, data.peers, ctx);
  el.count.textContent = state.q || state.department || state.location || state.available || app.results.length
    ? countText(data, theirs) : t('emptyHint');
  app.renderedKey = key;
  updateActiveDescendant();
  el.results.dataset.query = state.q;
  el.results.dataset.key = key;
  performance.mark('switchboard:render', { detail: { query: state.q, key } });
  followShown();
}

function updateActiveDescendant() {
  const row = markSelected(el.results, app.selected);
  if (row) el.q.setAttribute('aria-activedescendant', row.id);
  else el.q.removeAttribute('aria-activedescendant');
  return row;
}

function select(index) {
  app.selected = index;
  const row = updateActiveDescendant();
  if (row) row.scrollIntoView({ block: 'nearest' });
}

function setFilter(name, value) {
  if (name === 'available') app.state.available = !!value;
  else app.state[name] = value || null;
  syncUrl();
  runSearch();
}

// The person card -----------------------------------------------------------------------------

const cards = createLatest();

async function loadTeam(id) {
  try {
    const team = await api.get('/api/v1/people/' + encodeURIComponent(id) + '/team');
    for (const p of [...(team.chain || []), ...(team.reports || []), ...(team.team || [])]) storePresence(p);
    if (team.reach_instead) storePresence(team.reach_instead);
    if (team.deputy) storePresence(team.deputy);
    return team;
  } catch (e) {
    if (e.status === 404) return 'unavailable';
    return null;
  }
}

function setDetail(kind) {
  el.directory.dataset.detail = kind;
}

function emptyDetail() {
  el.detail.replaceChildren(h('div', { class: 'detail-empty' },
    h('p', { class: 'detail-empty-title' }, t('detailEmpty')),
    h('p', { class: 'muted' }, t('searchHint'))));
}

async function openPerson(id, { focus = true } = {}) {
  if (app.state.view !== 'directory') setView('directory');
  app.state.person = id;
  app.state.detail = 'card';
  app.org = null;
  syncUrl();
  const i = app.results.findIndex((p) => p.id === id);
  if (i >= 0 && i !== app.selected) select(i);
  const ticket = cards.begin();
  el.detail.setAttribute('aria-busy', 'true');
  setDetail('card');
  if (!app.card || app.card.person.id !== id) {
    el.detail.replaceChildren(h('p', { class: 'detail-loading muted' }, t('cardLoading')));
  }
  try {
    const [person, team] = await Promise.all([
      api.get('/api/v1/people/' + encodeURIComponent(id), { signal: ticket.signal }),
      loadTeam(id),
    ]);
    if (!cards.isCurrent(ticket)) return;
    storePresence(person);
    app.card = { person, team };
    showCard(focus);
  } catch (e) {
    if (isAbort(e) || !cards.isCurrent(ticket)) return;
    el.detail.replaceChildren(h('p', { class: 'error detail-loading' }, e.status === 404 ? t('notFound') : errorText(e)));
  } finally {
    if (cards.isCurrent(ticket)) el.detail.removeAttribute('aria-busy');
  }
}

function showCard(focus) {
  const { person, team } = app.card;
  el.detail.replaceChildren(renderCard(person, team, ctx));
  document.title = t('pageTitlePerson', { name: person.display_name });
  setDetail('card');
  if (focus) byId('card-name').focus();
  followShown();
}

function stripPresence(value) {
  return JSON.stringify(value, (k, v) => (k === 'presence' ? undefined : v));
}

/** Fetches the open card again; shows it only when something other than presence changed. */
// Reloads overlap (a pushed note, a stream opening, the timer): only the newest may show, and
// it shows whatever an earlier one it replaced was asked to show (after a save, say).
const cardReloads = createLatest();
let reloadForced = false;

async function reloadCard(force = false) {
  if (!app.card || app.org) return;
  const id = app.card.person.id;
  reloadForced = reloadForced || force;
  const ticket = cardReloads.begin();
  try {
    const [person, team] = await Promise.all([
      api.get('/api/v1/people/' + encodeURIComponent(id), { signal: ticket.signal }),
      loadTeam(id),
    ]);
    if (!cardReloads.isCurrent(ticket) || !app.card || app.card.person.id !== id || app.org) return;
    const forced = reloadForced;
    reloadForced = false;
    const form = el.detail.querySelector('.absence-form');
    const editing = (form && (form.dataset.dirty === 'true' || form.contains(document.activeElement)))
      || !!el.detail.querySelector('.deputy-picker:not([hidden])');
    storePresence(person);
    const changed = stripPresence({ person, team }) !== stripPresence(app.card);
    app.card = { person, team };
    if (forced || (changed && !editing)) {
      const hadFocus = el.detail.contains(document.activeElement);
      const focusId = hadFocus ? document.activeElement.id : null;
      showCard(false);
      if (hadFocus) (focusId && byId(focusId) ? byId(focusId) : byId('card-name')).focus();
    }
  } catch { /* the next refresh, or the connection banner, says more */ }
}

function closeDetail() {
  cards.invalidate();
  app.card = null;
  app.org = null;
  app.state.person = null;
  app.state.detail = null;
  syncUrl();
  document.title = t('pageTitle');
  setDetail('none');
  emptyDetail();
  el.q.focus();
  followShown();
}

async function saveAbsence(person, text, until) {
  try {
    await api.put('/api/v1/people/' + encodeURIComponent(person.id) + '/notes/absence', { text, until });
    toast(t('absenceSaved'));
    await reloadCard(true);
    return '';
  } catch (e) {
    return e.status === 403 ? t('notesForbidden') : errorText(e);
  }
}

async function clearAbsence(person) {
  try {
    await api.del('/api/v1/people/' + encodeURIComponent(person.id) + '/notes/absence');
    toast(t('absenceCleared'));
    await reloadCard(true);
    return '';
  } catch (e) {
    return e.status === 403 ? t('notesForbidden') : errorText(e);
  }
}

/** Puts focus on `id` in the card if the card has it (kept there by the reload that follows). */
function focusInCard(id) {
  const node = byId(id);
  if (node && el.detail.contains(document.activeElement)) node.focus();
}

async function setDeputy(person, deputy) {
  try {
    await api.put('/api/v1/people/' + encodeURIComponent(person.id) + '/deputy', { id: deputy.id });
    focusInCard('deputy-set');
    toast(t('deputySaved', { name: deputy.display_name, person: person.display_name }));
    await reloadCard(true);
    return '';
  } catch (e) {
    return deputyError(e);
  }
}

async function removeDeputy(person) {
  try {
    await api.del('/api/v1/people/' + encodeURIComponent(person.id) + '/deputy');
    focusInCard('deputy-set');
    toast(t('deputyRemoved'));
    await reloadCard(true);
    return '';
  } catch (e) {
    return deputyError(e);
  }
}

function deputyError(e) {
  if (e.status === 409) return t('deputySelf');
  if (e.status === 403) return t('deputyForbidden');
  if (e.status === 404) return t('deputyUnknown');
  return errorText(e);
}

/** The first `limit` of our people the search finds for `q` (the deputy picker's choices). */
async function searchPeople(q, limit, signal) {
  const data = await api.get('/api/v1/people?q=' + encodeURIComponent(q) + '&limit=' + limit, { signal });
  const items = (data && data.items) || [];
  for (const p of items) storePresence(p);
  return items;
}

function canEditNotes(person) {
  const s = app.session;
  if (!s) return false;
  return s.role === 'receptionist' || s.role === 'admin' || (!!s.person_id && s.person_id === person.id);
}

// The org chart -------------------------------------------------------------------------------

async function showOrg(id, { focus = true } = {}) {
  if (app.state.view !== 'directory') setView('directory');
  app.state.person = id;
  app.state.detail = 'org';
  syncUrl();
  const ticket = cards.begin();
  setDetail('org');
  try {
    const known = app.card && app.card.person.id === id ? app.card.person : null;
    const [person, team] = await Promise.all([
      known || api.get('/api/v1/people/' + encodeURIComponent(id), { signal: ticket.signal }),
      loadTeam(id),
    ]);
    if (!cards.isCurrent(ticket)) return;
    storePresence(person);
    app.org = { person, team: team && team.chain ? team : null };
    if (!app.card || app.card.person.id !== id) app.card = { person, team };
    el.detail.replaceChildren(renderOrg(person, app.org.team, ctx));
    document.title = t('pageTitlePerson', { name: t('orgChartOf', { name: person.display_name }) });
    if (focus) byId('org-title').focus();
    followShown();
  } catch (e) {
    if (isAbort(e) || !cards.isCurrent(ticket)) return;
    el.detail.replaceChildren(h('p', { class: 'error detail-loading' }, errorText(e)));
  }
}

async function loadTeamForOrg(id) {
  const team = await loadTeam(id);
  if (!team || team === 'unavailable') return null;
  setTimeout(followShown, 0);
  return team;
}

// The board of favourites ---------------------------------------------------------------------

async function loadFavourites() {
  try {
    const r = await api.get('/api/v1/me/favourites');
    app.favourites = r.items || [];
    app.teams = r.teams || [];
    app.favouritesEnabled = true;
    storeBoardPresence();
  } catch (e) {
    if (e.status === 403 || e.status === 404) { app.favourites = []; app.teams = []; app.favouritesEnabled = false; }
  }
  showBoard();
}

/** Keeps the presence of everyone on the board: pinned people, teams' leads and members. */
function storeBoardPresence() {
  for (const p of boardPeople(app.favourites, app.teams)) storePresence(p);
}

function showBoard() {
  // Every tile's dot carries data-pkey, so followShown() follows the teams' people too.
  renderBoard({ list: el.boardList, teams: el.boardTeams, empty: el.boardEmpty }, app.favourites, app.teams, ctx);
  el.boardEmpty.textContent = app.favouritesEnabled ? t('boardEmpty') : t('boardUnavailable');
  const shown = app.favourites.length + app.teams.length;
  el.boardCount.textContent = shown ? String(shown) : '';
  refreshPins();
  followShown();
}

function isFavourite(id) {
  return app.favourites.some((p) => p.id === id);
}

function isTeamPinned(id) {
  return hasTeam(app.teams, id);
}

function refreshPins() {
  for (const button of document.querySelectorAll('[data-pin]')) {
    const on = isFavourite(button.dataset.pin);
    button.setAttribute('aria-pressed', on ? 'true' : 'false');
    button.classList.toggle('is-on', on);
    const name = button.dataset.name || '';
    if (name) {
      const label = t(on ? 'unpinPerson' : 'pinPerson', { name });
      button.title = label;
      if (button.hasAttribute('aria-label')) button.setAttribute('aria-label', label);
    }
    const text = button.querySelector('span');
    if (text) text.textContent = on ? t('unpin') : t('pin');
  }
  for (const button of document.querySelectorAll('[data-pin-team]')) {
    const on = isTeamPinned(button.dataset.pinTeam);
    button.setAttribute('aria-pressed', on ? 'true' : 'false');
    button.classList.toggle('is-on', on);
    button.title = t(on ? 'unpinTeamOf' : 'pinTeamOf', { name: button.dataset.name || '' });
    const text = button.querySelector('span');
    if (text) text.textContent = t(on ? 'unpinTeam' : 'pinTeam');
  }
}

let favouriteWrites = Promise.resolve();

function toggleFavourite(person) {
  if (!person || person.peer) return;
  if (!app.favouritesEnabled) { toast(t('boardUnavailable')); return; }
  const before = app.favourites.slice();
  const on = isFavourite(person.id);
  if (!on && before.length >= 200) { toast(t('boardFull')); return; }
  const summary = { ...person };
  app.favourites = on ? before.filter((p) => p.id !== person.id) : [...before, summary];
  showBoard();
  toast(t(on ? 'unpinned' : 'pinned', { name: person.display_name }));
  saveBoard({ items: before, teams: app.teams });
}

/** The team answer for `id`: the open card's or org chart's when it is theirs, else asked. */
async function teamOf(id) {
  for (const shown of [app.org, app.card]) {
    if (shown && shown.person.id === id && shown.team && shown.team.chain) return shown.team;
  }
  const team = await loadTeam(id);
  return team && team.chain ? team : null;
}

/** Pins `lead`'s team (them and their direct reports) on the board, or unpins it. */
async function toggleTeam(lead) {
  if (!lead || lead.peer) return;
  if (!app.favouritesEnabled) { toast(t('boardUnavailable')); return; }
  let pin;
  if (isTeamPinned(lead.id)) {
    pin = app.teams.find((p) => p.lead.id === lead.id);
  } else {
    if (app.teams.length >= MAX_TEAMS) { toast(t('teamsFull')); return; }
    const team = await teamOf(lead.id);
    if (!team || !(team.reports_total > 0)) { toast(t('noTeamToPin', { name: lead.display_name })); return; }
    if (isTeamPinned(lead.id)) return; // pinned meanwhile (a second press)
    pin = teamPin({ ...lead }, team);
  }
  const before = { items: app.favourites, teams: app.teams };
  const on = isTeamPinned(lead.id);
  app.teams = toggledTeams(app.teams, pin);
  showBoard();
  toast(t(on ? 'teamUnpinned' : 'teamPinned', { name: lead.display_name }));
  saveBoard(before);
}

/**
 * Sends the board as it is now (people and teams), one write after another; `before` is what
 * it goes back to if the server refuses. A later change's answer wins over an earlier one's.
 */
function saveBoard(before) {
  const body = favouritesBody(app.favourites, app.teams);
  const sent = JSON.stringify(body);
  favouriteWrites = favouriteWrites.then(async () => {
    try {
      const r = await api.put('/api/v1/me/favourites', body);
      if (sent === JSON.stringify(favouritesBody(app.favourites, app.teams))) {
        app.favourites = r.items || app.favourites;
        if (Array.isArray(r.teams)) app.teams = r.teams;
        storeBoardPresence();
        showBoard();
      }
    } catch (e) {
      app.favourites = before.items;
      app.teams = before.teams;
      showBoard();
      toast(errorText(e));
    }
  });
}

// Views ---------------------------------------------------------------------------------------

function setView(view) {
  if (view === 'admin' && !(app.session && app.session.role === 'admin')) view = 'directory';
  app.state.view = view;
  el.app.dataset.view = view;
  for (const link of el.nav.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (view === 'admin') {
    if (!app.admin) app.admin = createAdmin(el.admin, { api, errorText, toast });
    app.admin.load();
  }
  syncUrl();
}

// Toasts and the clipboard --------------------------------------------------------------------

let toastTimer = null;
function toast(text) {
  clearTimeout(toastTimer);
  el.toast.textContent = text;
  el.toast.classList.add('is-shown');
  toastTimer = setTimeout(() => { el.toast.classList.remove('is-shown'); el.toast.textContent = ''; }, 2600);
}

async function copy(text, what) {
  if (!text) { toast(t('nothingToCopy', { what })); return; }
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      ok = true;
    }
  } catch { /* falls back below */ }
  if (!ok) {
    const area = h('textarea', { class: 'clipboard-helper', readonly: true, 'aria-hidden': 'true', tabindex: '-1' });
    area.value = text;
    const focused = document.activeElement;
    document.body.appendChild(area);
    area.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    if (focused && focused.focus) focused.focus();
  }
  toast(ok ? t('copied', { what: what || text }) : t('copyFailed'));
  if (ok) window.__switchboard.lastCopied = text;
}

// Keyboard ------------------------------------------------------------------------------------

function targetPerson() {
  const active = document.activeElement;
  const tile = active && active.closest && active.closest('.tile');
  if (tile) return boardPeople(app.favourites, app.teams).find((p) => p.id === tile.dataset.id) || null;
  const inDetail = el.detail.contains(active);
  if (app.card && (inDetail || app.selected < 0)) return app.card.person;
  if (app.selected >= 0 && app.results[app.selected]) return app.results[app.selected];
  return app.card ? app.card.person : null;
}

function copyFor(kind) {
  const person = targetPerson();
  if (!person) return;
  if (kind === 'email') {
    const mail = firstEmail(person);
    copy(mail, mail || t('email'));
    return;
  }
  const phone = kind === 'mobile' ? mobilePhone(person) : bestPhone(person);
  if (!phone) { toast(t('nothingToCopy', { what: t(kind === 'mobile' ? 'mobile' : 'bestNumber') })); return; }
  copy(copyString(phone), phone.display || copyString(phone));
}

function escape() {
  if (app.org) { openPerson(app.org.person.id); return; }
  if (app.state.person) { closeDetail(); return; }
  if (document.activeElement !== el.q) { el.q.focus(); return; }
  if (el.q.value || app.state.department || app.state.location || app.state.available) {
    el.q.value = '';
    app.state.q = '';
    syncUrl();
    runSearch();
  }
}

function onKey(e) {
  if (e.isComposing || !app.session || el.app.hidden) return;
  const where = whereOf(e.target, 'q', el.help.open);
  const action = actionFor(e.key, e, where);
  if (!action) return;
  const inDetailOrAdmin = el.detail.contains(e.target) || el.admin.contains(e.target) || el.board.contains(e.target);
  switch (action) {
    case 'next':
    case 'previous':
      if (where === 'page' && inDetailOrAdmin) return;
      if (app.state.view === 'admin') return;
      e.preventDefault();
      select(moveSelection(app.selected, action === 'next' ? 1 : -1, app.results.length));
      return;
    case 'open':
      if (app.selected >= 0 && app.results[app.selected]) {
        e.preventDefault();
        openPerson(app.results[app.selected].id);
      }
      return;
    case 'escape':
      e.preventDefault();
      escape();
      return;
    case 'blur':
      e.preventDefault();
      (el.detail.contains(e.target) && byId('card-name')) ? byId('card-name').focus() : el.q.focus();
      return;
    case 'focus-search':
      e.preventDefault();
      if (app.state.view === 'admin') setView('directory');
      el.q.focus();
      el.q.select();
      return;
    case 'help':
      e.preventDefault();
      el.help.showModal();
      return;
    case 'copy-number': e.preventDefault(); copyFor('number'); return;
    case 'copy-mobile': e.preventDefault(); copyFor('mobile'); return;
    case 'copy-email': e.preventDefault(); copyFor('email'); return;
    case 'toggle-favourite': e.preventDefault(); toggleFavourite(targetPerson()); return;
    case 'toggle-team': e.preventDefault(); toggleTeam(targetPerson()); return;
    case 'reach-instead': {
      const team = app.card && app.card.team;
      if (team && team.reach_instead) { e.preventDefault(); openPerson(team.reach_instead.id); }
      return;
    }
    case 'org-chart': {
      const person = targetPerson();
      if (person && !person.peer) { e.preventDefault(); showOrg(person.id); }
      return;
    }
    case 'board': {
      e.preventDefault();
      if (getComputedStyle(el.board).display === 'none') setView('board');
      const first = el.board.querySelector('.tiles button');
      (first || byId('board-title')).focus();
      return;
    }
    default:
  }
}

// Sign-in, sign-out, start --------------------------------------------------------------------

async function showSignIn(message) {
  live.stop();
  clearTimeout(probeTimer);
  app.timers.forEach(clearInterval);
  app.timers = [];
  app.session = null;
  app.card = null;
  app.org = null;
  app.results = [];
  app.favourites = [];
  app.teams = [];
  app.presence.clear();
  el.results.replaceChildren();
  el.detail.replaceChildren();
  el.boardList.replaceChildren();
  el.boardTeams.replaceChildren();
  el.app.hidden = true;
  el.nav.hidden = true;
  el.signout.hidden = true;
  el.helpButton.hidden = true;
  el.live.hidden = true;
  el.who.textContent = '';
  el.connBanner.hidden = true;
  document.body.classList.remove('is-stale');
  el.signin.hidden = false;
  document.title = t('pageTitle');
  byId('signin-error').textContent = message || '';
  byId('username').focus();
  try {
    const methods = await (await fetch('/api/v1/auth/methods', { cache: 'no-store' })).json();
    byId('sso-wrap').hidden = !methods.oidc;
  } catch { /* the form still works */ }
}

function startApp(session) {
  app.session = session;
  el.openBanner.hidden = !session.open;
  el.who.textContent = session.open ? '' : t('signedInAs', { name: session.display_name, role: t('roles.' + session.role) });
  el.signout.hidden = session.open || session.kind !== 'staff';
  el.signin.hidden = true;
  el.app.hidden = false;
  el.nav.hidden = false;
  el.helpButton.hidden = false;
  el.live.hidden = false;
  el.liveText.textContent = t('liveOk');
  el.navAdmin.hidden = session.role !== 'admin';
  live.restart();
  const state = app.state;
  el.q.value = state.q;
  setView(state.view);
  el.q.focus();
  performance.mark('switchboard:interactive');
  window.__switchboard.interactive = performance.now();
  runSearch();
  loadFavourites();
  if (state.person) {
    if (state.detail === 'org') showOrg(state.person, { focus: false });
    else openPerson(state.person, { focus: false });
  } else {
    setDetail('none');
    emptyDetail();
  }
  app.timers.push(setInterval(() => refreshAges(document), AGE_REFRESH_MS));
  app.timers.push(setInterval(() => { if (!app.lost && document.visibilityState === 'visible') reloadCard(); }, CARD_REFRESH_MS));
}

async function boot() {
  fillTexts();
  let attempt = 0;
  for (;;) {
    try {
      const r = await fetch('/api/v1/auth/session', { cache: 'no-store', credentials: 'same-origin' });
      if (r.ok) { connectionBack(); startApp(await r.json()); return; }
      if (r.status === 401 || r.status === 403) { connectionBack(); showSignIn(); return; }
    } catch { /* unreachable: retried below */ }
    el.connBanner.textContent = t('connectionLost', { time: hhmm(new Date()) });
    el.connBanner.hidden = false;
    await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt++, { base: 1000, max: 15000 })));
  }
}

// Wiring --------------------------------------------------------------------------------------

const ctx = {
  presenceOf, copy, isFavourite, toggleFavourite, isTeamPinned, toggleTeam, canEditNotes, saveAbsence, clearAbsence, closeDetail,
  setDeputy, removeDeputy, searchPeople, errorText,
  openPerson: (id) => openPerson(id), showOrg: (id) => showOrg(id), loadTeam: loadTeamForOrg,
  toggleFilter: setFilter,
  clearFilters: () => { app.state.department = null; app.state.location = null; app.state.available = false; syncUrl(); runSearch(); },
};

// The address follows typing after a pause: replacing it costs the page a couple of
// milliseconds a keystroke, spent before the search could even be sent.
let urlTimer = null;
el.q.addEventListener('input', () => {
  app.state.q = el.q.value;
  runSearch();
  clearTimeout(urlTimer);
  urlTimer = setTimeout(syncUrl, 300);
});

byId('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = byId('signin-error');
  const button = byId('signin-button');
  error.textContent = '';
  button.disabled = true;
  button.textContent = t('signingIn');
  try {
    const session = await api.post('/api/v1/auth/login', { username: byId('username').value, password: byId('password').value }, { quiet401: true });
    byId('password').value = '';
    startApp(session);
  } catch (err) {
    error.textContent = err.status === 0 ? errorText(err) : (err.detail || t('signInFailed'));
  } finally {
    button.disabled = false;
    button.textContent = t('signInButton');
  }
});

el.signout.addEventListener('click', async () => {
  try { await api.post('/api/v1/auth/logout', {}, { quiet401: true }); } catch { /* signed out either way */ }
  showSignIn();
});

el.helpButton.addEventListener('click', () => el.help.showModal());

el.nav.addEventListener('click', (e) => {
  const link = e.target.closest('[data-nav]');
  if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  setView(link.dataset.nav);
  if (link.dataset.nav === 'admin') byId('admin-title').focus();
  else if (link.dataset.nav === 'board') byId('board-title').focus();
  else el.q.focus();
});

document.addEventListener('keydown', onKey);

window.__switchboard = {
  get state() { return { ...app.state }; },
  get lost() { return app.lost; },
  get selected() { return app.selected; },
  live,
  lastCopied: null,
  interactive: null,
};

boot();
