// The board of favourites (a busy-lamp field): a tile per person with a live presence dot, then
// the pinned teams: a lead and their direct reports, with how many of them are available now.
import { h } from '../dom.js';
import { t } from '../strings.js';
import { teamPeople, availableCount, membersNotShown } from '../lib/teams.js';
import { icon } from './icons.js';
import { avatar, presenceEl, keyOf } from './person.js';

function tileOpen(p, ctx) {
  return h('button', { type: 'button', class: 'tile-open', onclick: () => ctx.openPerson(p.id) },
    avatar(p, 's'),
    h('span', { class: 'tile-text' },
      h('span', { class: 'tile-name' }, p.display_name),
      presenceEl(keyOf(p), ctx.presenceOf(p), 'compact')));
}

function unpinButton(label, cls, onclick) {
  return h('button', { type: 'button', class: ['icon-button', 'tile-unpin', cls], 'aria-label': label, title: label, onclick }, icon('close'));
}

/** "3 of 7 available", and how many members the server left out. */
function countText(pin, ctx) {
  const { available, total } = availableCount(pin, ctx.presenceOf);
  const more = membersNotShown(pin);
  const text = t('teamAvailable', { k: available.toLocaleString(), n: total.toLocaleString() });
  return more > 0 ? text + ' · ' + t('moreNotShown', { n: more.toLocaleString() }) : text;
}

function teamGroup(pin, ctx) {
  const lead = pin.lead;
  const hid = 'team-h-' + lead.id;
  return h('li', { class: 'team-group', dataset: { lead: lead.id } },
    h('div', { class: 'team-head' },
      h('h3', { id: hid, class: 'team-title' }, t('teamOf', { name: lead.display_name })),
      unpinButton(t('unpinTeamOf', { name: lead.display_name }), 'team-unpin', () => ctx.toggleTeam(lead))),
    h('p', { class: 'team-count', dataset: { teamCount: lead.id } }, countText(pin, ctx)),
    h('ul', { class: 'tiles team-tiles', 'aria-labelledby': hid }, teamPeople(pin).map((p) => h('li', {
      class: ['tile', 'tile-compact', p.id === lead.id ? 'tile-lead' : null], dataset: { id: p.id },
    }, tileOpen(p, ctx)))));
}

/** The board: `items` (people) into `parts.list`, `teams` (team pins) into `parts.teams`. */
export function renderBoard(parts, items, teams, ctx) {
  parts.empty.hidden = items.length > 0 || teams.length > 0;
  parts.list.replaceChildren(...items.map((p) => h('li', { class: 'tile', dataset: { id: p.id } },
    tileOpen(p, ctx),
    unpinButton(t('unpinPerson', { name: p.display_name }), null, () => ctx.toggleFavourite(p)))));
  parts.teams.replaceChildren(...teams.map((pin) => teamGroup(pin, ctx)));
}

/** Recounts the pinned teams' available people (after the stream told of a change). */
export function paintTeamCounts(container, teams, ctx) {
  for (const node of container.querySelectorAll('[data-team-count]')) {
    const pin = teams.find((p) => p.lead.id === node.dataset.teamCount);
    if (pin) node.textContent = countText(pin, ctx);
  }
}
