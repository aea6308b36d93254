// The console's state in the address bar, so a view can be bookmarked: what was typed, the
// filters, and which person (or org chart, or area) is open. Pure: strings in, objects out.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const VIEWS = ['directory', 'board', 'admin'];
const DETAILS = ['card', 'org'];

/** The default state: an empty search, no filters, the directory, nothing open. */
export function emptyState() {
  return { q: '', department: null, location: null, available: false, person: null, detail: null, view: 'directory' };
}

/** Reads a query string (`?q=…&department=…`) into a state; unknown or malformed values are ignored. */
export function decodeState(search) {
  const p = new URLSearchParams(search || '');
  const s = emptyState();
  s.q = (p.get('q') || '').slice(0, 256);
  const dept = p.get('department');
  if (dept) s.department = dept.slice(0, 256);
  const loc = p.get('location');
  if (loc) s.location = loc.slice(0, 256);
  s.available = p.get('available') === 'true';
  const person = p.get('person');
  if (person && UUID.test(person)) {
    s.person = person.toLowerCase();
    s.detail = p.get('detail') === 'org' ? 'org' : 'card';
  }
  const view = p.get('view');
  if (VIEWS.includes(view)) s.view = view;
  return s;
}

/** Writes a state as a query string (with its `?`, or '' for the default), in a stable order. */
export function encodeState(state) {
  const p = new URLSearchParams();
  if (state.q) p.set('q', state.q);
  if (state.department) p.set('department', state.department);
  if (state.location) p.set('location', state.location);
  if (state.available) p.set('available', 'true');
  if (state.person && UUID.test(state.person)) {
    p.set('person', state.person);
    if (state.detail === 'org') p.set('detail', 'org');
  }
  if (state.view && state.view !== 'directory' && VIEWS.includes(state.view)) p.set('view', state.view);
  const s = p.toString();
  return s ? '?' + s : '';
}

/**
 * The people-search query string for a state (`/api/v1/people` + this). Facet counts are asked
 * apart (`facets: true`, one result): counting every match of a first letter among a million
 * people takes milliseconds the results should not wait for.
 */
export function searchQuery(state, { limit = 25, peers = false, facets = false } = {}) {
  const p = new URLSearchParams();
  p.set('q', state.q || '');
  p.set('limit', String(facets ? 1 : limit));
  if (facets) p.set('facets', 'true');
  if (state.department) p.set('department', state.department);
  if (state.location) p.set('location', state.location);
  if (state.available) p.set('available', 'true');
  // Partners are asked only for something typed (they do not list their people).
  if (peers && !facets && (state.q || '').trim().length >= 3) p.set('peers', 'all');
  return '?' + p.toString();
}

/** A key naming what a search asks for: two states with the same key show the same results. */
export function searchKey(state) {
  return JSON.stringify([state.q || '', state.department || '', state.location || '', !!state.available]);
}

export { DETAILS, VIEWS };
