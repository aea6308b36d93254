import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeState, encodeState, emptyState, searchQuery, searchKey } from '../../../src/web/assets/lib/url-state.js';

const ID = '0b6c5a52-6c55-4a43-9d6e-0e1f2a3b4c5d';

test('the empty state encodes to nothing and decodes from nothing', () => {
  assert.equal(encodeState(emptyState()), '');
  assert.deepEqual(decodeState(''), emptyState());
  assert.deepEqual(decodeState('?'), emptyState());
});

test('query and filters round-trip through the address', () => {
  const state = { ...emptyState(), q: 'Zoë O\'Connor & co', department: 'Sales & Marketing', location: 'Zürich', available: true };
  const search = encodeState(state);
  assert.match(search, /^\?q=/);
  assert.ok(search.includes('available=true'));
  assert.deepEqual(decodeState(search), state);
});

test('the order of parameters is stable', () => {
  const a = encodeState({ ...emptyState(), location: 'Berlin', q: 'x', department: 'IT' });
  assert.equal(a, '?q=x&department=IT&location=Berlin');
});

test('an open card and the org chart are kept; a malformed id is dropped', () => {
  const card = decodeState('?q=smi&person=' + ID.toUpperCase());
  assert.equal(card.person, ID);
  assert.equal(card.detail, 'card');
  const org = decodeState('?person=' + ID + '&detail=org');
  assert.equal(org.detail, 'org');
  assert.equal(encodeState(org), '?person=' + ID + '&detail=org');
  const bad = decodeState('?person=../../etc&detail=org');
  assert.equal(bad.person, null);
  assert.equal(bad.detail, null);
});

test('available is only true when it says true; views are a closed list', () => {
  assert.equal(decodeState('?available=1').available, false);
  assert.equal(decodeState('?available=true').available, true);
  assert.equal(decodeState('?view=admin').view, 'admin');
  assert.equal(decodeState('?view=javascript:alert(1)').view, 'directory');
  assert.equal(encodeState({ ...emptyState(), view: 'board' }), '?view=board');
  assert.equal(encodeState({ ...emptyState(), view: 'directory' }), '');
});

test('very long values are cut to what the API accepts', () => {
  assert.equal(decodeState('?q=' + 'a'.repeat(1000)).q.length, 256);
});

test('the search asks for 25, the filters, and partners only for 3+ characters; facets apart', () => {
  const s = { ...emptyState(), q: 'ab', department: 'R&D', available: true };
  const q1 = new URLSearchParams(searchQuery(s, { peers: true }));
  assert.equal(q1.get('limit'), '25');
  assert.equal(q1.get('facets'), null);
  const counts = new URLSearchParams(searchQuery({ ...s, q: 'abc' }, { peers: true, facets: true }));
  assert.equal(counts.get('facets'), 'true');
  assert.equal(counts.get('limit'), '1');
  assert.equal(counts.get('peers'), null, 'partners are not asked for counts');
  assert.equal(counts.get('department'), 'R&D');
  assert.equal(counts.get('available'), 'true');
  assert.equal(q1.get('department'), 'R&D');
  assert.equal(q1.get('available'), 'true');
  assert.equal(q1.get('peers'), null);
  const q2 = new URLSearchParams(searchQuery({ ...s, q: 'abc' }, { peers: true }));
  assert.equal(q2.get('peers'), 'all');
  const q3 = new URLSearchParams(searchQuery({ ...s, q: 'abc' }, { peers: false }));
  assert.equal(q3.get('peers'), null);
});

test('the search key changes with the query and the filters, not with the open card', () => {
  const s = { ...emptyState(), q: 'jo' };
  assert.equal(searchKey(s), searchKey({ ...s, person: ID }));
  assert.notEqual(searchKey(s), searchKey({ ...s, q: 'jon' }));
  assert.notEqual(searchKey(s), searchKey({ ...s, available: true }));
});
