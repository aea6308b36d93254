import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApi, ApiError, isAbort } from '../../../src/web/assets/api.js';

function response(status, body, type = 'application/json') {
  return new Response(body === null ? null : typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'content-type': type } });
}

test('changes carry the CSRF token; reads do not', async () => {
  const seen = [];
  const api = createApi({ csrf: () => 'tok', fetchImpl: async (path, init) => { seen.push([path, init]); return response(200, { ok: true }); } });
  await api.get('/api/v1/people?q=a');
  await api.put('/api/v1/me/favourites', { ids: ['x'] });
  await api.del('/api/v1/people/x/notes/absence');
  assert.equal(seen[0][1].headers['x-csrf-token'], undefined);
  assert.equal(seen[1][1].headers['x-csrf-token'], 'tok');
  assert.equal(seen[1][1].headers['content-type'], 'application/json');
  assert.equal(seen[1][1].body, '{"ids":["x"]}');
  assert.equal(seen[2][1].method, 'DELETE');
  assert.equal(seen[2][1].headers['x-csrf-token'], 'tok');
});

test('an upload is the raw file as application/octet-stream', async () => {
  let init;
  const api = createApi({ csrf: () => 't', fetchImpl: async (p, i) => { init = i; return response(200, {}); } });
  await api.upload('/api/v1/imports?source=a&dry_run=true', 'a,b\n1,2\n');
  assert.equal(init.method, 'POST');
  assert.equal(init.headers['content-type'], 'application/octet-stream');
  assert.equal(init.body, 'a,b\n1,2\n');
});

test('problem+json errors become ApiError with the detail', async () => {
  const api = createApi({ fetchImpl: async () => response(403, { title: 'Forbidden', detail: 'not yours', code: 'forbidden', status: 403 }, 'application/problem+json') });
  await assert.rejects(api.put('/x', {}), (e) => e instanceof ApiError && e.status === 403 && e.detail === 'not yours' && e.code === 'forbidden');
});

test('401 tells the console (sign in again), unless asked not to', async () => {
  let told = 0;
  const api = createApi({ onUnauthorized: () => { told += 1; }, fetchImpl: async () => response(401, { detail: 'sign in' }) });
  await assert.rejects(api.get('/x'), (e) => e.status === 401);
  assert.equal(told, 1);
  await assert.rejects(api.post('/api/v1/auth/login', {}, { quiet401: true }), (e) => e.status === 401);
  assert.equal(told, 1);
});

test('an unreachable server is status 0 and reported; an abort is neither', async () => {
  let lost = 0;
  const api = createApi({ onUnreachable: () => { lost += 1; }, fetchImpl: async () => { throw new TypeError('Failed to fetch'); } });
  await assert.rejects(api.get('/x'), (e) => e instanceof ApiError && e.status === 0);
  assert.equal(lost, 1);
  const aborting = createApi({ onUnreachable: () => { lost += 1; }, fetchImpl: async () => { throw new DOMException('aborted', 'AbortError'); } });
  await assert.rejects(aborting.get('/x'), (e) => isAbort(e));
  assert.equal(lost, 1);
});

test('204 is null; JSON is parsed', async () => {
  const api = createApi({ fetchImpl: async (p) => (p === '/none' ? response(204, null) : response(200, { a: 1 })) });
  assert.equal(await api.del('/none'), null);
  assert.deepEqual(await api.get('/json'), { a: 1 });
});
