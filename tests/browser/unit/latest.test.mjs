import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLatest } from '../../../src/web/assets/lib/latest.js';

test('only the newest ticket may show its answer', () => {
  const latest = createLatest();
  const a = latest.begin();
  const b = latest.begin();
  assert.equal(latest.isCurrent(a), false);
  assert.equal(latest.isCurrent(b), true);
});

test('a new request aborts the one before', () => {
  const latest = createLatest();
  const a = latest.begin();
  assert.equal(a.signal.aborted, false);
  latest.begin();
  assert.equal(a.signal.aborted, true);
});

test('answers arriving out of order: the older one is dropped', async () => {
  const latest = createLatest();
  const shown = [];
  const ask = (query, delay) => {
    const ticket = latest.begin();
    return new Promise((resolve) => setTimeout(resolve, delay)).then(() => {
      if (latest.isCurrent(ticket)) shown.push(query);
    });
  };
  await Promise.all([ask('s', 30), ask('sm', 20), ask('smi', 1)]);
  assert.deepEqual(shown, ['smi']);
});

test('invalidate drops every ticket issued so far', () => {
  const latest = createLatest();
  const a = latest.begin();
  latest.invalidate();
  assert.equal(latest.isCurrent(a), false);
  assert.equal(latest.isCurrent(null), false);
});
