// The board of favourites (a busy-lamp field): a tile per person with a live presence dot.
import { h } from '../dom.js';
import { t } from '../strings.js';
import { icon } from './icons.js';
import { avatar, presenceEl, keyOf } from './person.js';

export function renderBoard(list, empty, items, ctx) {
  empty.hidden = items.length > 0;
  list.replaceChildren(...items.map((p) => h('li', { class: 'tile', dataset: { id: p.id } },
    h('button', { type: 'button', class: 'tile-open', onclick: () => ctx.openPerson(p.id) },
      avatar(p, 's'),
      h('span', { class: 'tile-text' },
        h('span', { class: 'tile-name' }, p.display_name),
        presenceEl(keyOf(p), ctx.presenceOf(p), 'compact'))),
    h('button', {
      type: 'button', class: 'icon-button tile-unpin', 'aria-label': t('unpinPerson', { name: p.display_name }), title: t('unpinPerson', { name: p.display_name }),
      onclick: () => ctx.toggleFavourite(p),
    }, icon('close')))));
}
