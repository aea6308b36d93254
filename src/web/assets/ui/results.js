// The result list (an ARIA grid: rows with aria-selected, driven from the search box through
// aria-activedescendant), the facet chips above it and partners' people below it.
import { h } from '../dom.js';
import { t } from '../strings.js';
import { shortDateTime } from '../lib/time.js';
import { avatar, nameWithNicknames, presenceEl, contactList, pinButton, keyOf } from './person.js';

export function rowId(id) {
  return 'result-' + id;
}

function noteLine(absence) {
  if (!absence || !absence.text) return null;
  const until = absence.until ? ' · ' + t('noteUntil', { time: shortDateTime(absence.until) }) : '';
  return h('p', { class: 'absence-line' }, t('absenceNote', { text: absence.text }) + until);
}

function meta(person, withOrg) {
  const bits = [withOrg ? person.organization : null, person.title, person.department, person.location].filter(Boolean);
  return h('p', { class: 'result-meta' }, bits.join(' · '));
}

/** One result row; only the selected row's links and buttons are in the tab order. */
export function resultRow(person, ctx, selected) {
  const row = h('div', {
    role: 'row', id: rowId(person.id), class: 'result', 'aria-selected': selected ? 'true' : 'false',
    dataset: { id: person.id },
  },
  h('div', { role: 'gridcell', class: 'result-main' },
    avatar(person, 'm'),
    h('div', { class: 'result-text' },
      h('p', { class: 'result-name' }, nameWithNicknames(person)),
      meta(person, false),
      presenceEl(keyOf(person), ctx.presenceOf(person), 'full'),
      noteLine(person.absence))),
  h('div', { role: 'gridcell', class: 'result-contacts' }, contactList(person, ctx, { tabbable: selected, compact: true })),
  h('div', { role: 'gridcell', class: 'result-actions' }, pinButton(person, ctx, { tabbable: selected })));
  row.addEventListener('click', (e) => {
    if (e.target.closest('a, button')) return;
    ctx.openPerson(person.id, { fromResults: true });
  });
  return row;
}

/** Puts the selection on row `index` (-1: none), keeping only its controls tabbable. */
export function markSelected(grid, index) {
  let selected = null;
  grid.querySelectorAll('[role="row"]').forEach((row, i) => {
    const on = i === index;
    row.setAttribute('aria-selected', on ? 'true' : 'false');
    for (const c of row.querySelectorAll('a, button')) {
      if (on) c.removeAttribute('tabindex'); else c.setAttribute('tabindex', '-1');
    }
    if (on) selected = row;
  });
  return selected;
}

export function countText(data, theirs) {
  let text;
  if (!data.total) text = t('countNone');
  else if (data.total === 1) text = t('countOne');
  else text = t(data.total_exact === false ? 'countAtLeast' : 'countMany', { n: data.total.toLocaleString() });
  if (data.approximate) text += ' · ' + t('approximate');
  if (theirs) text += ' · ' + t('countPartners', { n: theirs });
  return text;
}

const SHOWN_PER_FACET = 6;

function facetGroup(name, label, counts, active, ctx) {
  const values = (counts || []).slice(0, SHOWN_PER_FACET);
  if (active && !values.some((v) => v.value === active)) values.unshift({ value: active, count: null });
  if (!values.length) return null;
  const id = 'facet-' + name;
  return h('div', { class: 'facet', role: 'group', 'aria-labelledby': id },
    h('span', { class: 'facet-label', id }, label),
    values.map((v) => {
      const on = v.value === active;
      return h('button', {
        type: 'button', class: ['chip', on ? 'is-on' : null], 'aria-pressed': on ? 'true' : 'false',
        onclick: () => ctx.toggleFilter(name, on ? null : v.value),
      }, h('span', { class: 'chip-value' }, v.value), v.count != null ? h('span', { class: 'chip-count' }, v.count.toLocaleString()) : null);
    }));
}

/** The facet chips: "Available now", departments, locations; clicking toggles a filter. */
export function renderFacets(container, facets, state, ctx) {
  const parts = [];
  const available = facets && typeof facets.available === 'number' ? facets.available : null;
  parts.push(h('div', { class: 'facet facet-available' },
    h('button', {
      type: 'button', class: ['chip', 'chip-available', state.available ? 'is-on' : null], 'aria-pressed': state.available ? 'true' : 'false',
      onclick: () => ctx.toggleFilter('available', !state.available),
    }, h('span', { class: 'dot dot-available', 'aria-hidden': 'true' }), h('span', { class: 'chip-value' }, t('availableNow')),
    available != null ? h('span', { class: 'chip-count' }, available.toLocaleString()) : null),
    state.department || state.location || state.available
      ? h('button', { type: 'button', class: 'link-button', onclick: () => ctx.clearFilters() }, t('clearFilters')) : null));
  parts.push(facetGroup('department', t('facetDepartment'), facets && facets.department, state.department, ctx));
  parts.push(facetGroup('location', t('facetLocation'), facets && facets.location, state.location, ctx));
  container.replaceChildren(...parts.filter(Boolean));
}

/** Partners' people, below ours, one section per company. */
export function renderPartners(container, peers, ctx) {
  const sections = [];
  for (const peer of peers || []) {
    if (peer.note) sections.push(h('p', { class: 'partner-note' }, t('partnerNote', { peer: peer.peer, note: peer.note })));
    const byCompany = new Map();
    for (const p of peer.items || []) {
      const company = p.organization || peer.peer;
      if (!byCompany.has(company)) byCompany.set(company, []);
      byCompany.get(company).push({ ...p, peer: peer.peer });
    }
    for (const [company, people] of byCompany) {
      const hid = 'partner-' + sections.length;
      sections.push(h('section', { class: 'partner', 'aria-labelledby': hid },
        h('h3', { id: hid, class: 'partner-heading' }, t('atCompany', { company })),
        h('ul', { class: 'partner-list' }, people.map((p) => h('li', { class: 'result result-partner' },
          h('div', { class: 'result-main' },
            avatar(p, 'm'),
            h('div', { class: 'result-text' },
              h('p', { class: 'result-name' }, nameWithNicknames(p)),
              meta(p, true),
              presenceEl(keyOf(p), ctx.presenceOf(p), 'full'),
              noteLine(p.absence))),
          h('div', { class: 'result-contacts' }, contactList(p, ctx, { compact: true })))))));
    }
  }
  container.replaceChildren(...sections);
}
