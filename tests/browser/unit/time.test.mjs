import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hhmm, age, shortDateTime, localInputToRfc3339, toLocalInput } from '../../../src/web/assets/lib/time.js';
import { agoText } from '../../../src/web/assets/lib/presence.js';
import { t } from '../../../src/web/assets/strings.js';

test('"as of HH:MM" is zero-padded 24-hour local time', () => {
  assert.equal(hhmm(new Date(2024, 0, 5, 9, 7)), '09:07');
  assert.equal(hhmm(new Date(2024, 0, 5, 23, 59)), '23:59');
  assert.equal(hhmm('not a time'), '');
  assert.equal(t('connectionLost', { time: hhmm(new Date(2024, 0, 5, 14, 5)) }), 'Connection lost — presence as of 14:05, reconnecting…');
});

test('ages: just now, minutes, hours, then days', () => {
  const now = new Date('2024-03-01T12:00:00Z');
  assert.deepEqual(age('2024-03-01T11:59:30Z', now), { unit: 'now', n: 0 });
  assert.deepEqual(age('2024-03-01T12:00:30Z', now), { unit: 'now', n: 0 }, 'a clock a little ahead is now');
  assert.deepEqual(age('2024-03-01T11:57:00Z', now), { unit: 'minutes', n: 3 });
  assert.deepEqual(age('2024-03-01T09:00:00Z', now), { unit: 'hours', n: 3 });
  assert.deepEqual(age('2024-02-25T12:00:00Z', now), { unit: 'days', n: 5 });
  assert.equal(age(null, now), null);
  assert.equal(age('garbage', now), null);
});

test('"3 min ago" in words', () => {
  const now = Date.parse('2024-03-01T12:00:00Z');
  assert.equal(agoText('2024-03-01T11:57:00Z', now), '3 min ago');
  assert.equal(agoText('2024-03-01T11:59:59Z', now), 'just now');
  assert.equal(agoText('2024-03-01T10:00:00Z', now), '2 h ago');
  assert.equal(agoText(null, now), '');
});

test('short date-times: today as HH:MM, otherwise with the date', () => {
  const now = new Date(2024, 2, 1, 15, 0);
  assert.equal(shortDateTime(new Date(2024, 2, 1, 9, 30), now), '09:30');
  assert.equal(shortDateTime(new Date(2024, 1, 28, 9, 30), now), '2024-02-28 09:30');
});

test('datetime-local inputs become RFC 3339 and back', () => {
  const local = toLocalInput(new Date(2024, 5, 3, 14, 0));
  assert.equal(local, '2024-06-03T14:00');
  const rfc = localInputToRfc3339(local);
  assert.match(rfc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(new Date(rfc).getTime(), new Date(2024, 5, 3, 14, 0).getTime());
  assert.equal(localInputToRfc3339(''), null);
});
