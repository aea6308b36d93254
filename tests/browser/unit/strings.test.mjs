import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { strings, t } from '../../../src/web/assets/strings.js';
import { presenceSummary, availabilityLabel, isSimulated, AVAILABILITIES } from '../../../src/web/assets/lib/presence.js';

const assets = join(dirname(fileURLToPath(import.meta.url)), '../../../src/web/assets');

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

test('t() fills placeholders and leaves unknown ones', () => {
  assert.equal(t('copied', { what: '020 7946 0018' }), 'Copied 020 7946 0018');
  assert.equal(t('countMany', {}), '{n} people');
  assert.equal(t('availability.do_not_disturb'), 'Do not disturb');
});

function has(key) {
  const v = key.split('.').reduce((o, k) => (o == null ? undefined : o[k]), strings);
  return typeof v === 'string' || (v && typeof v === 'object' && key.endsWith('.'));
}

test('every key the console asks for exists', () => {
  const missing = [];
  for (const file of files(assets).filter((f) => f.endsWith('.js'))) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/\bt\(\s*'([A-Za-z0-9_.]+)'/g)) {
      if (!m[1].endsWith('.') && !has(m[1])) missing.push(file.slice(assets.length + 1) + ': ' + m[1]);
    }
  }
  const html = readFileSync(join(assets, 'index.html'), 'utf8');
  for (const m of html.matchAll(/data-t(?:-[a-z-]+)?="([A-Za-z0-9_.]+)"/g)) {
    if (!has(m[1])) missing.push('index.html: ' + m[1]);
  }
  assert.deepEqual(missing, []);
});

test('the page itself has no words outside strings.js (but the product name)', () => {
  const html = readFileSync(join(assets, 'index.html'), 'utf8')
    .replace(/<script[\s\S]*?<\/script>/g, '').replace(/<style[\s\S]*?<\/style>/g, '');
  const text = html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
  assert.equal(text, 'Switchboard ?');
});

test('every availability has a word (never colour alone)', () => {
  for (const a of AVAILABILITIES) {
    assert.ok(strings.availability[a], a);
    assert.equal(availabilityLabel(a), strings.availability[a]);
  }
  assert.equal(availabilityLabel('nonsense'), 'Unknown');
  assert.equal(presenceSummary({ availability: 'away', idle: true, channels: [] }), 'Away, idle');
  assert.equal(presenceSummary(null), 'No presence');
});

test('simulated presence is recognised by the backend name', () => {
  assert.equal(isSimulated({ channels: [{ backend: 'simulated' }] }), true);
  assert.equal(isSimulated({ channels: [{ backend: 'pbx' }] }), false);
  assert.equal(isSimulated(null), false);
});

test('no inline styles or handlers in the page, one module entry', () => {
  const html = readFileSync(join(assets, 'index.html'), 'utf8');
  assert.doesNotMatch(html, /\sstyle=/i);
  assert.doesNotMatch(html, /\son[a-z]+=/i);
  assert.match(html, /<script type="module" src="\/assets\/app\.js"><\/script>/);
  assert.doesNotMatch(html, /https?:\/\//);
  assert.match(html, /<input id="q"/);
});
