// The pieces every view shows of a person: photo or initials, name, presence, contacts.
import { h } from '../dom.js';
import { t, strings } from '../strings.js';
import { icon } from './icons.js';
import { availabilityOf, availabilityLabel, presenceSummary, agoText, presenceKey } from '../lib/presence.js';
import { telUri, copyString, imScheme, imLabel, linkableIm } from '../lib/dial.js';

/** Initials for a name: first letters of the first and last words. */
export function initials(name) {
  const words = String(name || '').trim().split(/\s+/).filter((w) => /\p{L}/u.test(w));
  if (!words.length) return '?';
  const first = words[0].match(/\p{L}/u)[0];
  const last = words.length > 1 ? words[words.length - 1].match(/\p{L}/u)[0] : '';
  return (first + last).toUpperCase();
}

function hue(name) {
  let n = 0;
  for (const ch of String(name || '')) n = (n * 31 + ch.codePointAt(0)) >>> 0;
  return n % 8;
}

/** A round photo, or the initials on a colour picked from the name. Decorative: the name is beside it. */
export function avatar(person, size = 'm') {
  const wrap = h('span', { class: ['avatar', 'avatar-' + size, 'tone-' + hue(person.display_name)], 'aria-hidden': 'true' }, initials(person.display_name));
  if (person.photo_url && person.photo_url.startsWith('/')) {
    const img = h('img', { src: person.photo_url, alt: '', loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', () => img.remove());
    img.addEventListener('load', () => wrap.classList.add('has-photo'));
    wrap.appendChild(img);
  }
  return wrap;
}

/** Name with nicknames. */
export function nameWithNicknames(person) {
  const nicks = (person.nicknames || []).filter((n) => n && n !== person.display_name);
  return [person.display_name, nicks.length ? h('span', { class: 'nick' }, ' ', t('nicknames', { names: nicks.join('”, “') })) : null];
}

/**
 * A live presence indicator: dot + word, and with `full` the status message and its age.
 * It carries `data-pkey` so a stream event repaints every copy of it on the page.
 */
export function presenceEl(key, presence, variant = 'full') {
  const el = h('span', { class: ['presence', 'presence-' + variant], dataset: { pkey: key, variant } });
  paintPresence(el, presence);
  return el;
}

export function paintPresence(el, presence, now = Date.now()) {
  const variant = el.dataset.variant || 'full';
  const a = presence ? availabilityOf(presence) : 'none';
  el.dataset.availability = a;
  const dot = h('span', { class: ['dot', 'dot-' + a], 'aria-hidden': 'true' });
  const word = h('span', { class: 'presence-word' }, variant === 'full' ? presenceSummary(presence) : (presence ? availabilityLabel(a) : t('noPresence')));
  const parts = [dot, word];
  if (variant === 'full' && presence) {
    if (presence.status_message) parts.push(h('span', { class: 'presence-message' }, presence.status_message));
    if (presence.observed_at) {
      parts.push(h('span', { class: 'presence-age', dataset: { observed: presence.observed_at } }, agoText(presence.observed_at, now)));
    }
  }
  el.replaceChildren(...parts);
  if (variant !== 'full' && presence && presence.status_message) el.title = presence.status_message;
}

/** Refreshes the "3 min ago" texts under `root`. */
export function refreshAges(root, now = Date.now()) {
  for (const el of root.querySelectorAll('[data-observed]')) {
    el.textContent = agoText(el.dataset.observed, now);
  }
}

export function keyOf(person) {
  return presenceKey(person.id, person.peer);
}

/** A copy button: copies `text`, names `what` in the toast. */
export function copyButton(ctx, text, what, label, tabbable = true) {
  return h('button', {
    type: 'button', class: 'icon-button copy', 'aria-label': label || t('copyWhat', { what }), title: label || t('copyWhat', { what }),
    tabindex: tabbable ? null : '-1',
    onclick: (e) => { e.stopPropagation(); ctx.copy(text, what); },
  }, icon('copy'));
}

function imName(scheme) {
  return Object.hasOwn(strings.imSchemes, scheme) ? strings.imSchemes[scheme] : scheme;
}

function phoneLabel(phone) {
  return t('phoneKinds.' + phone.kind);
}

/**
 * The ways to reach someone: numbers (`tel:` links with their extension, copy buttons),
 * emails (`mailto:`), IM handles as the URIs they are. `limit` keeps a result row short.
 */
export function contactList(person, ctx, { tabbable = true, compact = false } = {}) {
  const items = [];
  const tab = tabbable ? null : '-1';
  for (const phone of person.phones || []) {
    const uri = telUri(phone);
    const shown = phone.display || phone.raw || phone.extension || '';
    const number = uri
      ? h('a', { href: uri, class: ['contact-value', phone.valid === false ? 'unverified' : null], tabindex: tab, title: phone.valid === false ? t('unverifiedNumber') : null, 'aria-label': t('call', { number: shown }) + (phone.extension && phone.e164 ? ' ' + t('extension', { ext: phone.extension }) : ''), onclick: (e) => e.stopPropagation() }, shown)
      : h('span', { class: 'contact-value' }, shown);
    items.push(h('li', { class: 'contact contact-phone' },
      h('span', { class: 'contact-kind' }, phoneLabel(phone)),
      number,
      phone.extension && phone.e164 ? h('span', { class: 'contact-ext' }, t('extension', { ext: phone.extension })) : null,
      uri ? copyButton(ctx, copyString(phone), shown, t('copyWhat', { what: shown }), tabbable) : null));
  }
  for (const mail of person.emails || []) {
    items.push(h('li', { class: 'contact contact-email' },
      h('span', { class: 'contact-kind' }, t('emailKind')),
      h('a', { href: 'mailto:' + mail, class: 'contact-value', tabindex: tab, 'aria-label': t('mailTo', { address: mail }), onclick: (e) => e.stopPropagation() }, mail),
      copyButton(ctx, mail, mail, t('copyWhat', { what: mail }), tabbable)));
  }
  if (compact) {
    // In a result row the IM handles are short links named by their system; the card shows them whole.
    const links = (person.im || []).filter(linkableIm).map((uri) => {
      const name = imName(imScheme(uri));
      return h('a', { href: uri, class: 'im-link', tabindex: tab, title: imLabel(uri), 'aria-label': t('imWith', { scheme: name }) + ': ' + imLabel(uri), onclick: (e) => e.stopPropagation() }, name);
    });
    if (links.length) items.push(h('li', { class: 'contact contact-im' }, h('span', { class: 'contact-kind' }, t('imShort')), links));
  } else {
    for (const uri of person.im || []) {
      const scheme = imScheme(uri);
      const name = imName(scheme);
      items.push(h('li', { class: 'contact contact-im' },
        h('span', { class: 'contact-kind' }, name),
        linkableIm(uri)
          ? h('a', { href: uri, class: 'contact-value', tabindex: tab, 'aria-label': t('imWith', { scheme: name }) + ': ' + imLabel(uri), onclick: (e) => e.stopPropagation() }, imLabel(uri))
          : h('span', { class: 'contact-value' }, imLabel(uri))));
    }
  }
  return h('ul', { class: ['contacts', compact ? 'contacts-compact' : null] }, items);
}

/** The pin toggle (aria-pressed), for results and cards. */
export function pinButton(person, ctx, { tabbable = true, withText = false } = {}) {
  const on = ctx.isFavourite(person.id);
  const label = on ? t('unpinPerson', { name: person.display_name }) : t('pinPerson', { name: person.display_name });
  return h('button', {
    type: 'button', class: ['pin', withText ? 'button' : 'icon-button', on ? 'is-on' : null], 'aria-pressed': on ? 'true' : 'false',
    'aria-label': withText ? null : label, title: label, tabindex: tabbable ? null : '-1', dataset: { pin: person.id, name: person.display_name },
    onclick: (e) => { e.stopPropagation(); ctx.toggleFavourite(person); },
  }, icon('pin'), withText ? h('span', null, on ? t('unpin') : t('pin')) : null);
}

/** The team pin toggle (aria-pressed) for someone with direct reports: their team on the board. */
export function teamPinButton(person, ctx) {
  const on = ctx.isTeamPinned(person.id);
  return h('button', {
    type: 'button', class: ['button', 'pin-team', on ? 'is-on' : null], 'aria-pressed': on ? 'true' : 'false',
    title: t(on ? 'unpinTeamOf' : 'pinTeamOf', { name: person.display_name }), dataset: { pinTeam: person.id, name: person.display_name },
    onclick: (e) => { e.stopPropagation(); ctx.toggleTeam(person); },
  }, icon('team'), h('span', null, t(on ? 'unpinTeam' : 'pinTeam')), h('kbd', null, 't'));
}

/** A small clickable person: dot, name, title; opens them. */
export function personChip(person, ctx, { withTitle = true } = {}) {
  return h('button', {
    type: 'button', class: 'person-chip', onclick: () => ctx.openPerson(person.id),
    'aria-label': null,
  },
  avatar(person, 's'),
  h('span', { class: 'chip-text' },
    h('span', { class: 'chip-name' }, person.display_name),
    withTitle && person.title ? h('span', { class: 'chip-title' }, person.title) : null),
  presenceEl(keyOf(person), ctx.presenceOf(person), 'compact'));
}
