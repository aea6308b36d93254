// The org chart from one person: up their manager chain, them, then their reports, each report
// opened on demand (one team at a time: never the whole tree).
import { h } from '../dom.js';
import { t } from '../strings.js';
import { icon } from './icons.js';
import { personChip, teamPinButton } from './person.js';

let serial = 0;

function reportItems(team, ctx) {
  const items = (team.reports || []).map((p) => reportItem(p, ctx));
  const more = (team.reports_total || 0) - (team.reports || []).length;
  if (!items.length) items.push(h('li', { class: 'org-empty muted' }, t('noReports')));
  if (more > 0) items.push(h('li', { class: 'org-more muted' }, t('moreNotShown', { n: more.toLocaleString() })));
  return items;
}

function reportItem(person, ctx) {
  const id = 'org-sub-' + (++serial);
  const children = h('ul', { class: 'org-children', id, hidden: true });
  const toggle = h('button', {
    type: 'button', class: 'icon-button disclosure', 'aria-expanded': 'false', 'aria-controls': id,
    'aria-label': t('expand', { name: person.display_name }), title: t('expand', { name: person.display_name }),
  }, icon('chevron'));
  let loaded = false;
  toggle.addEventListener('click', async () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    const label = t(open ? 'collapse' : 'expand', { name: person.display_name });
    toggle.setAttribute('aria-label', label);
    toggle.title = label;
    children.hidden = !open;
    if (open && !loaded) {
      loaded = true;
      children.replaceChildren(h('li', { class: 'muted' }, t('cardLoading')));
      const team = await ctx.loadTeam(person.id);
      if (!team) {
        loaded = false;
        children.replaceChildren(h('li', { class: 'muted' }, t('teamUnavailable')));
        return;
      }
      children.replaceChildren(...reportItems(team, ctx));
    }
  });
  const chip = personChip(person, ctx);
  chip.dataset.rel = 'report';
  return h('li', { class: 'org-item' }, h('div', { class: 'org-node' }, toggle, chip), children);
}

/** The org chart region for `person` (a summary) with their `team`. */
export function renderOrg(person, team, ctx) {
  const root = h('ul', { class: 'org-tree' });
  let level = root;
  const chain = team && team.chain ? team.chain.slice().reverse() : [];
  for (const p of chain) {
    const chip = personChip(p, ctx);
    chip.dataset.rel = 'chain';
    const nested = h('ul', { class: 'org-children' });
    level.appendChild(h('li', { class: 'org-item' }, h('div', { class: 'org-node' }, h('span', { class: 'disclosure-spacer' }), chip), nested));
    level = nested;
  }
  const self = personChip(person, ctx);
  self.setAttribute('aria-current', 'true');
  self.classList.add('is-self');
  const reports = h('ul', { class: 'org-children' }, team ? reportItems(team, ctx) : h('li', { class: 'muted' }, t('teamUnavailable')));
  level.appendChild(h('li', { class: 'org-item' }, h('div', { class: 'org-node' }, h('span', { class: 'disclosure-spacer' }), self), reports));
  return h('section', { role: 'region', class: 'org', id: 'org', 'aria-labelledby': 'org-title', dataset: { id: person.id } },
    h('div', { class: 'card-toolbar' },
      h('button', { type: 'button', class: 'button ghost back', onclick: () => ctx.openPerson(person.id) }, icon('back'), h('span', null, t('orgBack'))),
      team && team.reports_total > 0 ? [h('span', { class: 'spacer' }), teamPinButton(person, ctx)] : null),
    h('h2', { id: 'org-title', tabindex: '-1' }, t('orgChartOf', { name: person.display_name })),
    root);
}
