import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionFor, whereOf, moveSelection } from '../../../src/web/assets/lib/keys.js';

const none = { ctrlKey: false, metaKey: false, altKey: false };

test('in the search box, letters type; arrows, Enter and Esc drive the list', () => {
  for (const k of ['c', 'm', 'e', 'f', 't', 'o', 'r', '/', '?', 'b']) assert.equal(actionFor(k, none, 'search'), null, k);
  assert.equal(actionFor('ArrowDown', none, 'search'), 'next');
  assert.equal(actionFor('ArrowUp', none, 'search'), 'previous');
  assert.equal(actionFor('Enter', none, 'search'), 'open');
  assert.equal(actionFor('Escape', none, 'search'), 'escape');
});

test('in any other field nothing fires but Esc', () => {
  for (const k of ['c', 't', '/', '?', 'ArrowDown', 'Enter']) assert.equal(actionFor(k, none, 'text'), null, k);
  assert.equal(actionFor('Escape', none, 'text'), 'blur');
});

test('on the page, the single-letter shortcuts', () => {
  assert.equal(actionFor('/', none, 'page'), 'focus-search');
  assert.equal(actionFor('?', none, 'page'), 'help');
  assert.equal(actionFor('c', none, 'page'), 'copy-number');
  assert.equal(actionFor('m', none, 'page'), 'copy-mobile');
  assert.equal(actionFor('e', none, 'page'), 'copy-email');
  assert.equal(actionFor('f', none, 'page'), 'toggle-favourite');
  assert.equal(actionFor('t', none, 'page'), 'toggle-team');
  assert.equal(actionFor('T', none, 'page'), null);
  assert.equal(actionFor('r', none, 'page'), 'reach-instead');
  assert.equal(actionFor('o', none, 'page'), 'org-chart');
  assert.equal(actionFor('x', none, 'page'), null);
  assert.equal(actionFor('C', none, 'page'), null);
  assert.equal(actionFor('Enter', none, 'page'), null, 'Enter on a focused button clicks it');
});

test('with Ctrl, Cmd or Alt nothing is ours (Ctrl+C copies as usual); a dialog keeps its keys', () => {
  assert.equal(actionFor('c', { ...none, ctrlKey: true }, 'page'), null);
  assert.equal(actionFor('c', { ...none, metaKey: true }, 'page'), null);
  assert.equal(actionFor('/', { ...none, altKey: true }, 'page'), null);
  assert.equal(actionFor('Escape', none, 'dialog'), null);
});

test('where a key press happens', () => {
  assert.equal(whereOf({ id: 'q', tagName: 'INPUT', type: 'search' }, 'q', false), 'search');
  assert.equal(whereOf({ id: 'x', tagName: 'INPUT', type: 'text' }, 'q', false), 'text');
  assert.equal(whereOf({ id: '', tagName: 'INPUT', type: 'checkbox' }, 'q', false), 'page');
  assert.equal(whereOf({ id: '', tagName: 'TEXTAREA' }, 'q', false), 'text');
  assert.equal(whereOf({ id: '', tagName: 'DIV', isContentEditable: true }, 'q', false), 'text');
  assert.equal(whereOf({ id: '', tagName: 'BUTTON' }, 'q', false), 'page');
  assert.equal(whereOf({ id: 'q', tagName: 'INPUT' }, 'q', true), 'dialog');
  assert.equal(whereOf(null, 'q', false), 'page');
});

test('the selection moves and stops at the ends', () => {
  assert.equal(moveSelection(-1, 1, 5), 0);
  assert.equal(moveSelection(-1, -1, 5), 4);
  assert.equal(moveSelection(0, -1, 5), 0);
  assert.equal(moveSelection(4, 1, 5), 4);
  assert.equal(moveSelection(2, 1, 5), 3);
  assert.equal(moveSelection(2, 1, 0), -1);
});
