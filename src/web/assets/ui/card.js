// The person card: everything about one person, the people around them, "reach instead",
// their deputy (with a picker to choose one), and the absence note form. A region headed (h2)
// by their name.
import { h } from '../dom.js';
import { isAbort } from '../api.js';
import { t } from '../strings.js';
import { shortDateTime, toLocalInput, localInputToRfc3339 } from '../lib/time.js';
import { agoText, availabilityOf, availabilityLabel } from '../lib/presence.js';
import { bestPhone, copyString, telUri } from '../lib/dial.js';
import { createLatest } from '../lib/latest.js';
import { moveSelection } from '../lib/keys.js';
import { icon } from './icons.js';
import { avatar, nameWithNicknames, presenceEl, contactList, pinButton, teamPinButton, personChip, keyOf, copyButton } from './person.js';

function noteBox(note, kind) {
  if (!note || !note.text) return null;
  const bits = [];
  if (note.until) bits.push(t('noteUntil', { time: shortDateTime(note.until, new Date()) }));
  if (note.set_by) bits.push(t('noteBy', { who: note.set_by.replace(/^local:/, ''), when: note.set_at ? agoText(note.set_at, Date.now()) : '' }).trim());
  return h('div', { class: ['note', 'note-' + kind], dataset: { note: kind } },
    h('p', { class: 'note-text' }, t(kind === 'absence' ? 'absenceNote' : 'statusNote', { text: note.text })),
    bits.length ? h('p', { class: 'note-meta' }, bits.join(' · ')) : null);
}

export function channelsTable(person, ctx) {
  const presence = ctx.presenceOf(person);
  const channels = (presence && presence.channels) || [];
  if (!presence) return h('p', { class: 'muted' }, t('noChannels'));
  const now = Date.now();
  const row = (cells, cls) => h('tr', { class: cls }, cells.map((c, i) => h(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : { class: i === 2 || i === 4 ? 'nowrap' : null }, c)));
  const stateCell = (p) => {
    const a = availabilityOf(p);
    return h('span', { class: 'presence presence-compact', dataset: { availability: a } }, h('span', { class: ['dot', 'dot-' + a], 'aria-hidden': 'true' }), h('span', { class: 'presence-word' }, availabilityLabel(a)));
  };
  return h('table', { class: 'table channels', 'aria-labelledby': 'card-presence-h' },
    h('thead', null, h('tr', null, [t('channel'), t('handle'), t('state'), t('message'), t('seen')].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null,
      channels.map((c) => row([c.backend, h('span', { class: 'mono' }, c.uri), stateCell(c), c.status_message || '', c.observed_at ? h('span', { dataset: { observed: c.observed_at } }, agoText(c.observed_at, now)) : '—'])),
      row([t('merged'), '', stateCell(presence), presence.status_message || '', presence.observed_at ? h('span', { dataset: { observed: presence.observed_at } }, agoText(presence.observed_at, now)) : '—'], 'merged-row')));
}

function peopleList(people, ctx, rel, more) {
  if (!people || !people.length) return h('p', { class: 'muted' }, t('none'));
  return [h('ul', { class: 'people-list' }, people.map((p) => {
    const chip = personChip(p, ctx);
    chip.dataset.rel = rel;
    return h('li', null, chip);
  })), more > 0 ? h('p', { class: 'muted more' }, t('moreNotShown', { n: more.toLocaleString() })) : null];
}

function peopleSection(person, team, ctx) {
  const parts = [h('h3', { id: 'card-people-h' }, t('people'))];
  if (team && team.chain) {
    const chain = team.chain.slice().reverse(); // top first, their manager last
    parts.push(h('h4', null, t('managerChain')));
    parts.push(chain.length ? h('ol', { class: 'chain' }, chain.map((p, i) => {
      const chip = personChip(p, ctx, { withTitle: i === chain.length - 1 });
      chip.dataset.rel = i === chain.length - 1 ? 'manager' : 'chain';
      return h('li', null, chip);
    })) : h('p', { class: 'muted' }, t('none')));
    parts.push(h('h4', null, t('team')), peopleList(team.team, ctx, 'team', (team.team_total || 0) - team.team.length));
    parts.push(h('h4', null, t('reports')), peopleList(team.reports, ctx, 'report', (team.reports_total || 0) - team.reports.length));
  } else {
    // No team answer (an older server, or it failed): the manager the card names.
    parts.push(h('h4', null, t('manager')));
    if (person.manager) {
      parts.push(h('ul', { class: 'people-list' }, h('li', null, h('button', {
        type: 'button', class: 'person-chip', dataset: { rel: 'manager' }, onclick: () => ctx.openPerson(person.manager.id),
      }, avatar(person.manager, 's'), h('span', { class: 'chip-text' }, h('span', { class: 'chip-name' }, person.manager.display_name))))));
    } else {
      parts.push(h('p', { class: 'muted' }, t('none')));
    }
    if (team === 'unavailable') parts.push(h('p', { class: 'muted' }, t('teamUnavailable')));
  }
  return h('section', { class: 'card-section card-people', 'aria-labelledby': 'card-people-h' }, parts);
}

function reachSection(team, ctx) {
  if (!team || !team.chain) return null;
  const p = team.reach_instead;
  let body;
  if (p) {
    const chip = personChip(p, ctx);
    chip.dataset.rel = 'reach';
    const phone = bestPhone(p);
    const shown = phone ? phone.display || copyString(phone) : '';
    body = [
      h('div', { class: 'reach-person' }, chip),
      h('p', { class: 'reach-line' },
        team.reach_reason ? h('span', { class: 'reach-reason' }, t('reachReason.' + team.reach_reason)) : null,
        phone ? h('a', { href: telUri(phone), class: 'reach-number', 'aria-label': t('call', { number: shown }) }, shown) : null,
        phone ? copyButton(ctx, copyString(phone), shown) : null),
      h('p', { class: 'hint' }, t('reachHint', { name: p.display_name })),
    ];
  } else {
    body = [h('p', { class: 'muted' }, t('noReach'))];
  }
  return h('section', { class: ['card-section', 'reach', p ? 'has-reach' : null], 'aria-labelledby': 'card-reach-h' },
    h('h3', { id: 'card-reach-h' }, t('reachInstead')), body);
}

const PICKER_LIMIT = 8;

/**
 * The deputy picker: a search box (a combobox) over a listbox of the search's first people;
 * ↑ ↓ choose, Enter sets, Esc cancels. `done()` closes it.
 */
function deputyPicker(person, ctx, error, done) {
  const searches = createLatest();
  let options = [];
  let active = -1;
  const list = h('ul', { id: 'deputy-options', class: 'deputy-options', role: 'listbox', 'aria-label': t('deputyOptions'), hidden: true });
  const status = h('p', { class: 'muted deputy-status', role: 'status' });
  const input = h('input', {
    id: 'deputy-q', type: 'search', role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': 'deputy-options',
    'aria-describedby': 'deputy-hint', autocomplete: 'off', spellcheck: 'false', placeholder: t('deputyPlaceholder'),
  });

  function mark(index) {
    active = index;
    list.querySelectorAll('[role="option"]').forEach((node, i) => {
      node.setAttribute('aria-selected', i === active ? 'true' : 'false');
      if (i === active) node.scrollIntoView({ block: 'nearest' });
    });
    if (active >= 0 && options[active]) input.setAttribute('aria-activedescendant', 'deputy-opt-' + options[active].id);
    else input.removeAttribute('aria-activedescendant');
  }

  function show(people, query) {
    options = people;
    list.replaceChildren(...people.map((p, i) => {
      const bits = [p.title, p.department].filter(Boolean).join(' · ');
      return h('li', {
        id: 'deputy-opt-' + p.id, role: 'option', class: 'deputy-option', 'aria-selected': 'false', dataset: { id: p.id },
        onmousedown: (e) => e.preventDefault(), // the search box keeps focus
        onclick: () => choose(i),
      }, avatar(p, 's'),
      h('span', { class: 'chip-text' }, h('span', { class: 'chip-name' }, p.display_name), bits ? h('span', { class: 'chip-title' }, bits) : null),
      presenceEl(keyOf(p), ctx.presenceOf(p), 'compact'));
    }));
    list.hidden = !people.length;
    input.setAttribute('aria-expanded', people.length ? 'true' : 'false');
    status.textContent = query && !people.length ? t('deputyNoMatch') : '';
    mark(people.length ? 0 : -1);
  }

  async function search() {
    const query = input.value.trim();
    const ticket = searches.begin();
    if (!query) { show([], ''); return; }
    try {
      const found = await ctx.searchPeople(query, PICKER_LIMIT, ticket.signal);
      if (searches.isCurrent(ticket)) show(found.filter((p) => p.id !== person.id), query);
    } catch (e) {
      if (searches.isCurrent(ticket) && !isAbort(e)) error.textContent = ctx.errorText(e);
    }
  }

  async function choose(index) {
    const deputy = options[index];
    if (!deputy) return;
    error.textContent = '';
    error.textContent = await ctx.setDeputy(person, deputy) || '';
  }

  input.addEventListener('input', () => { error.textContent = ''; search(); });
  input.addEventListener('keydown', (e) => {
    if (e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') mark(moveSelection(active, e.key === 'ArrowDown' ? 1 : -1, options.length));
    else if (e.key === 'Enter') choose(active);
    else if (e.key === 'Escape') done();
    else return;
    e.preventDefault();
    e.stopPropagation(); // the picker's keys, not the console's shortcuts
  });

  const picker = h('div', { id: 'deputy-picker', class: 'deputy-picker', hidden: true },
    h('div', { class: 'field' }, h('label', { for: 'deputy-q' }, t('deputyFind', { name: person.display_name })), input),
    h('p', { id: 'deputy-hint', class: 'hint' }, t('deputyHint')),
    list, status,
    h('div', { class: 'form-actions' }, h('button', { type: 'button', class: 'button ghost', id: 'deputy-cancel', onclick: () => done() }, t('deputyCancel'))));
  picker.reset = () => {
    searches.invalidate();
    input.value = '';
    show([], '');
  };
  return picker;
}

/** Their deputy (a chip that opens them), and for who may change it: set, remove. */
function deputySection(person, team, ctx) {
  if (!team || !team.chain || team.deputy === undefined) return null; // a server without deputies
  const deputy = team.deputy;
  let line;
  if (deputy) {
    const chip = personChip(deputy, ctx);
    chip.dataset.rel = 'deputy';
    line = h('div', { class: 'deputy-person', id: 'deputy-line' }, chip);
  } else {
    line = h('p', { class: 'muted', id: 'deputy-line' }, t('noDeputy'));
  }
  const parts = [h('h3', { id: 'card-deputy-h' }, t('deputy')), line];
  if (ctx.canEditNotes(person)) {
    const error = h('p', { class: 'error', id: 'deputy-error', role: 'alert' });
    const set = h('button', { type: 'button', class: 'button', id: 'deputy-set', 'aria-expanded': 'false', 'aria-controls': 'deputy-picker' }, t('deputySetButton'));
    const close = () => {
      picker.hidden = true;
      picker.reset();
      set.setAttribute('aria-expanded', 'false');
      set.focus();
    };
    const picker = deputyPicker(person, ctx, error, close);
    set.addEventListener('click', () => {
      if (!picker.hidden) { close(); return; }
      error.textContent = '';
      picker.hidden = false;
      set.setAttribute('aria-expanded', 'true');
      picker.querySelector('input').focus();
    });
    const remove = deputy ? h('button', {
      type: 'button', class: 'button', id: 'deputy-remove',
      onclick: async () => {
        error.textContent = '';
        error.textContent = await ctx.removeDeputy(person) || '';
      },
    }, t('deputyRemove')) : null;
    parts.push(h('div', { class: 'form-actions' }, set, remove), picker, error);
  }
  return h('section', { class: 'card-section card-deputy', 'aria-labelledby': 'card-deputy-h' }, parts);
}

function absenceForm(person, ctx) {
  const current = person.absence;
  const error = h('p', { class: 'error', id: 'absence-error', role: 'alert' });
  const text = h('input', { id: 'absence-text', name: 'text', type: 'text', maxlength: '500', required: true, autocomplete: 'off', placeholder: t('absencePlaceholder'), value: current ? current.text : '' });
  const until = h('input', { id: 'absence-until', name: 'until', type: 'datetime-local', value: current && current.until ? toLocalInput(current.until) : '' });
  const clear = h('button', { type: 'button', class: 'button', id: 'absence-clear', disabled: !current }, t('absenceClear'));
  const form = h('form', { class: 'card-section absence-form', 'aria-labelledby': 'card-absence-h', novalidate: true },
    h('h3', { id: 'card-absence-h' }, t('absenceForm')),
    h('div', { class: 'field' }, h('label', { for: 'absence-text' }, t('absenceText')), text),
    h('div', { class: 'field' }, h('label', { for: 'absence-until' }, t('absenceUntil')), until),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button primary' }, t('absenceSet')), clear),
    error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!text.value.trim()) { text.focus(); return; }
    error.textContent = await ctx.saveAbsence(person, text.value.trim(), localInputToRfc3339(until.value)) || '';
  });
  clear.addEventListener('click', async () => {
    error.textContent = '';
    error.textContent = await ctx.clearAbsence(person) || '';
  });
  form.addEventListener('input', () => { form.dataset.dirty = 'true'; });
  return form;
}

/** The card for `person` (a Person) with `team` (the team answer, 'loading', 'unavailable' or null). */
export function renderCard(person, team, ctx) {
  const key = keyOf(person);
  const bits = [person.title, person.department].filter(Boolean).join(' · ');
  const place = [person.location, person.org_unit && person.org_unit !== person.department ? person.org_unit : null].filter(Boolean).join(' · ');
  const canEdit = ctx.canEditNotes(person);
  return h('section', { role: 'region', class: 'card', id: 'card', 'aria-labelledby': 'card-name', dataset: { id: person.id } },
    h('div', { class: 'card-toolbar' },
      h('button', { type: 'button', class: 'button ghost back', onclick: () => ctx.closeDetail() }, icon('back'), h('span', null, t('cardClose'))),
      h('span', { class: 'spacer' }),
      pinButton(person, ctx, { withText: true }),
      team && team.chain && team.reports_total > 0 ? teamPinButton(person, ctx) : null,
      h('button', { type: 'button', class: 'button', onclick: () => ctx.showOrg(person.id) }, icon('org'), h('span', null, t('orgChart')), h('kbd', null, 'o'))),
    h('header', { class: 'card-head' },
      avatar(person, 'l'),
      h('div', { class: 'card-head-text' },
        h('h2', { id: 'card-name', tabindex: '-1' }, nameWithNicknames(person)),
        bits ? h('p', { class: 'card-meta' }, bits) : null,
        place ? h('p', { class: 'card-meta' }, place) : null,
        presenceEl(key, ctx.presenceOf(person), 'full'))),
    h('div', { class: 'card-notes', id: 'card-notes' }, noteBox(person.absence, 'absence'), noteBox(person.status, 'status')),
    h('div', { class: 'card-columns' },
      h('section', { class: 'card-section', 'aria-labelledby': 'card-contacts-h' },
        h('h3', { id: 'card-contacts-h' }, t('contacts')), contactList(person, ctx)),
      reachSection(team, ctx)),
    deputySection(person, team, ctx),
    h('section', { class: 'card-section', 'aria-labelledby': 'card-presence-h' },
      h('h3', { id: 'card-presence-h' }, t('presenceHeading')),
      h('div', { id: 'card-presence-table', class: 'table-wrap', tabindex: '0', role: 'group', 'aria-labelledby': 'card-presence-h' }, channelsTable(person, ctx))),
    canEdit ? absenceForm(person, ctx) : null,
    peopleSection(person, team, ctx),
    person.sources && person.sources.length
      ? h('p', { class: 'sources muted' }, t('sources') + ': ' + person.sources.map((s) => s.source).join(', ')) : null);
}

