import { test } from 'node:test';
import assert from 'node:assert/strict';
import { teamPeople, availableCount, membersNotShown, teamPin, hasTeam, toggleTeam, favouritesBody, boardPeople, MAX_TEAM_MEMBERS } from '../../../src/web/assets/lib/teams.js';
import { strings } from '../../../src/web/assets/strings.js';

const person = (id, availability) => ({ id, display_name: 'P ' + id, presence: availability ? { availability, channels: [] } : null });
const lead = person('lead', 'available');
const pin = { lead, members: [person('a', 'available'), person('b', 'busy'), person('c', null)], members_total: 3 };

test('a team shows its lead first, then its members, each once', () => {
  assert.deepEqual(teamPeople(pin).map((p) => p.id), ['lead', 'a', 'b', 'c']);
  assert.deepEqual(teamPeople({ lead, members: [person('lead'), person('a')] }).map((p) => p.id), ['lead', 'a']);
  assert.deepEqual(teamPeople({ lead, members: undefined }).map((p) => p.id), ['lead']);
  assert.deepEqual(teamPeople(null), []);
});

test('available counts the lead and members, by the presence the stream last told', () => {
  const fromResponse = (p) => p.presence;
  assert.deepEqual(availableCount(pin, fromResponse), { available: 2, total: 4 });
  // The stream says the lead went busy and c came online: its word wins over the response's.
  const live = new Map([['lead', { availability: 'busy' }], ['c', { availability: 'available' }]]);
  const presenceOf = (p) => (live.has(p.id) ? live.get(p.id) : p.presence);
  assert.deepEqual(availableCount(pin, presenceOf), { available: 2, total: 4 });
  assert.deepEqual(availableCount({ lead: person('x', 'away'), members: [] }, fromResponse), { available: 0, total: 1 });
});

test('members beyond those sent are counted as not shown', () => {
  assert.equal(membersNotShown(pin), 0);
  assert.equal(membersNotShown({ ...pin, members_total: 60 }), 57);
  assert.equal(membersNotShown({ lead, members: [] }), 0);
});

test('a pin from a team answer keeps at most 50 members, never the lead, and the full count', () => {
  const reports = Array.from({ length: 70 }, (_, i) => person('r' + i));
  const made = teamPin(lead, { chain: [], reports: [lead, ...reports], reports_total: 70 });
  assert.equal(made.lead, lead);
  assert.equal(made.members.length, MAX_TEAM_MEMBERS);
  assert.ok(!made.members.some((p) => p.id === 'lead'));
  assert.equal(made.members_total, 70);
  assert.deepEqual(teamPin(lead, { reports: [person('a')], reports_total: 0 }).members_total, 1);
});

test('toggling a team adds it at the end or takes it out', () => {
  const other = { lead: person('other'), members: [], members_total: 0 };
  const one = toggleTeam([], pin);
  assert.deepEqual(one.map((p) => p.lead.id), ['lead']);
  const two = toggleTeam(one, other);
  assert.deepEqual(two.map((p) => p.lead.id), ['lead', 'other']);
  assert.ok(hasTeam(two, 'other'));
  const back = toggleTeam(two, { lead: person('lead') });
  assert.deepEqual(back.map((p) => p.lead.id), ['other']);
  assert.ok(!hasTeam(back, 'lead'));
  assert.ok(!hasTeam(undefined, 'lead'));
});

test('the PUT body keeps the people and the teams (by lead), in board order', () => {
  const items = [person('x'), person('y')];
  assert.deepEqual(favouritesBody(items, [pin, { lead: person('z') }]), { ids: ['x', 'y'], teams: ['lead', 'z'] });
  assert.deepEqual(favouritesBody([], []), { ids: [], teams: [] });
  assert.deepEqual(favouritesBody(items, undefined), { ids: ['x', 'y'], teams: [] });
});

test('everyone on the board, each once: pinned people, then the teams\' people', () => {
  const items = [person('a'), person('x')];
  assert.deepEqual(boardPeople(items, [pin]).map((p) => p.id), ['a', 'x', 'lead', 'b', 'c']);
  assert.deepEqual(boardPeople([], []), []);
});

test('the team strings and the t shortcut are there', () => {
  assert.equal(strings.teamOf, 'Team of {name}');
  assert.equal(strings.teamAvailable, '{k} of {n} available');
  assert.equal(strings.reachReason.deputy, 'their deputy');
  assert.ok(strings.shortcuts.some(([key]) => key === 't'));
});
