import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLive, normalizeIds, covers, MAX_IDS } from '../../../src/web/assets/lib/live.js';
import { backoffDelay } from '../../../src/web/assets/lib/backoff.js';

class FakeSource {
  static all = [];
  constructor(url) { this.url = url; this.listeners = {}; this.closed = false; FakeSource.all.push(this); }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  emit(type, data) { for (const fn of this.listeners[type] || []) fn({ data: data === undefined ? undefined : JSON.stringify(data) }); }
  close() { this.closed = true; }
}

function harness() {
  FakeSource.all = [];
  const timers = [];
  const events = [];
  const live = createLive({
    EventSourceImpl: FakeSource,
    onPresence: (key, presence, peer) => events.push({ key, presence, peer }),
    onNotes: (change) => events.push({ notes: change }),
    onOpen: (peer) => events.push({ open: peer }),
    onError: (peer, opened) => events.push({ error: peer, opened }),
    setTimer: (fn) => { timers.push(fn); return timers.length; },
    clearTimer: (id) => { timers[id - 1] = null; },
  });
  const flush = () => { const fns = timers.splice(0); for (const fn of fns) if (fn) fn(); };
  return { live, flush, events, open: () => FakeSource.all.filter((s) => !s.closed) };
}

const ids = (n, from = 0) => Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${String(from + i).padStart(12, '0')}`);

test('ids are de-duplicated, ordered and capped at 1000', () => {
  assert.deepEqual(normalizeIds(['b', 'a', 'b', '', null]), ['a', 'b']);
  assert.equal(normalizeIds(ids(1500)).length, MAX_IDS);
});

test('a stream covers a smaller set, but not one much smaller', () => {
  assert.equal(covers(ids(25), ids(20)), true);
  assert.equal(covers(ids(25), ids(20, 10)), false);
  assert.equal(covers(ids(300), ids(10)), false);
  assert.equal(covers(null, []), true);
});

test('one stream for the union, opened after the debounce, not per change', () => {
  const h = harness();
  h.live.follow(ids(3), {});
  h.live.follow(ids(5), {});
  assert.equal(FakeSource.all.length, 0, 'nothing before the pause');
  h.flush();
  assert.equal(h.open().length, 1);
  assert.ok(h.open()[0].url.startsWith('/api/v1/presence/stream?ids='));
  assert.equal(h.open()[0].url.split('=')[1].split(',').length, 5);
  // A subset is still covered: no reopen.
  h.live.follow(ids(4), {});
  h.flush();
  assert.equal(FakeSource.all.length, 1);
  // Someone new: reopened, the old one closed.
  h.live.follow(ids(6), {});
  h.flush();
  assert.equal(FakeSource.all.length, 2);
  assert.equal(FakeSource.all[0].closed, true);
  assert.equal(h.open().length, 1);
});

test('events reach the console under their key; partners under peer/id', () => {
  const h = harness();
  h.live.follow(ids(1), { acme: ['p1'] });
  h.flush();
  const [ours, theirs] = FakeSource.all;
  assert.equal(theirs.url, '/api/v1/peers/acme/presence/stream?ids=p1');
  ours.emit('open');
  ours.emit('presence', { id: ids(1)[0], presence: { availability: 'busy' } });
  theirs.emit('presence', { id: 'p1', presence: { availability: 'away' } });
  assert.deepEqual(h.events[0], { open: null });
  assert.deepEqual(h.events[1], { key: ids(1)[0], presence: { availability: 'busy' }, peer: null });
  assert.deepEqual(h.events[2], { key: 'acme/p1', presence: { availability: 'away' }, peer: 'acme' });
});

test('an error on ours is reported (with whether it had opened); stop and restart', () => {
  const h = harness();
  h.live.follow(ids(2), {});
  h.flush();
  const s = FakeSource.all[0];
  s.emit('open');
  s.emit('error');
  assert.deepEqual(h.events.at(-1), { error: null, opened: true });
  h.live.stop();
  assert.equal(s.closed, true);
  h.live.follow(ids(3), {});
  h.flush();
  assert.equal(h.open().length, 0, 'stopped: nothing opens');
  h.live.restart();
  assert.equal(h.open().length, 1);
  assert.equal(h.open()[0].url.split('=')[1].split(',').length, 3);
});

test('following no one closes the stream', () => {
  const h = harness();
  h.live.follow(ids(2), {});
  h.flush();
  h.live.follow([], {});
  h.flush();
  assert.equal(h.open().length, 0);
});

test('backoff doubles up to the cap, with bounded jitter', () => {
  const fixed = { random: () => 0.5 };
  assert.deepEqual([0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, { base: 1000, max: 15000, ...fixed })), [1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(2, { base: 1000, max: 30000 });
    assert.ok(d >= 3200 && d <= 4800, String(d));
  }
});

test('notes changes come from our stream only', () => {
  const h = harness();
  h.live.follow(ids(2), { acme: ['p1'] });
  h.flush();
  const [ours, theirs] = [h.open().find((s) => !s.url.includes('/peers/')), h.open().find((s) => s.url.includes('/peers/'))];
  ours.emit('notes', { id: ids(1)[0], absence: { text: 'Off sick today' }, status: null });
  ours.emit('notes', 'not json {');
  assert.equal(theirs.listeners.notes, undefined, 'a partner stream has no notes');
  const notes = h.events.filter((e) => e.notes);
  assert.equal(notes.length, 1);
  assert.equal(notes[0].notes.absence.text, 'Off sick today');
});
