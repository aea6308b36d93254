import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dialDigits, telUri, copyString, bestPhone, mobilePhone, firstEmail, imScheme, imLabel, linkableIm } from '../../../src/web/assets/lib/dial.js';

const work = { kind: 'work', display: '020 7946 0018', raw: '+44 20 7946 0018', e164: '+442079460018' };
const workExt = { ...work, extension: '123' };
const mobile = { kind: 'mobile', display: '07700 900123', raw: '07700 900123', e164: '+447700900123' };
const asWritten = { kind: 'work', display: '(555) 01-23 x9', raw: '(555) 01-23 x9', valid: false };
const extOnly = { kind: 'extension', display: '4711', raw: '4711', extension: '4711' };

test('E.164 when known, else the digits as written', () => {
  assert.equal(dialDigits(work), '+442079460018');
  assert.equal(dialDigits(asWritten), '55501239');
  assert.equal(dialDigits(extOnly), '4711');
  assert.equal(dialDigits(null), '');
  assert.equal(dialDigits({ kind: 'work', display: 'n/a', raw: 'n/a' }), '');
});

test('tel: URIs carry the extension as ;ext=', () => {
  assert.equal(telUri(work), 'tel:+442079460018');
  assert.equal(telUri(workExt), 'tel:+442079460018;ext=123');
  assert.equal(telUri(extOnly), 'tel:4711');
  assert.equal(telUri({ kind: 'work', display: '', raw: '' }), '');
});

test('the copied dial string pauses before the extension', () => {
  assert.equal(copyString(workExt), '+442079460018,123');
  assert.equal(copyString(mobile), '+447700900123');
  assert.equal(copyString(extOnly), '4711');
});

test('the best number: work, then extension, then mobile; never a fax', () => {
  assert.equal(bestPhone({ phones: [mobile, work] }), work);
  assert.equal(bestPhone({ phones: [mobile, extOnly] }), extOnly);
  assert.equal(bestPhone({ phones: [mobile] }), mobile);
  assert.equal(bestPhone({ phones: [{ kind: 'fax', display: '1', raw: '1', e164: '+11' }] }), null);
  assert.equal(bestPhone({ phones: [] }), null);
  assert.equal(bestPhone({ phones: [asWritten, mobile] }), asWritten);
});

test('mobile and email', () => {
  assert.equal(mobilePhone({ phones: [work, mobile] }), mobile);
  assert.equal(mobilePhone({ phones: [work] }), null);
  assert.equal(firstEmail({ emails: ['a@x', 'b@x'] }), 'a@x');
  assert.equal(firstEmail({ emails: [] }), null);
});

test('IM handles are linked as they are, never as javascript:', () => {
  assert.equal(imScheme('xmpp:jane@chat.example.com'), 'xmpp');
  assert.equal(imScheme('MSTeams:jane@example.com'), 'msteams');
  assert.equal(imLabel('matrix:u/jane:example.com'), 'u/jane:example.com');
  assert.equal(imLabel('sip:jane%40example.com'), 'jane@example.com');
  for (const ok of ['xmpp:a@b', 'msteams:a@b', 'matrix:u/a:b', 'sip:a@b', 'slack:U123']) assert.ok(linkableIm(ok), ok);
  for (const bad of ['javascript:alert(1)', 'data:text/html,x', 'vbscript:x', 'plain']) assert.equal(linkableIm(bad), false, bad);
});
