// Keyboard shortcuts: which action a key press means where it happens. Pure, so it can be
// tested without a page: `where` says what has focus.

const LETTERS = { c: 'copy-number', m: 'copy-mobile', e: 'copy-email', f: 'toggle-favourite', t: 'toggle-team', r: 'reach-instead', o: 'org-chart', b: 'board' };

/**
 * The action for a key press, or null.
 * `key`: KeyboardEvent.key; `mods`: {ctrlKey, metaKey, altKey};
 * `where`: 'search' (the search box), 'text' (any other field), 'dialog' (a modal is open), 'page'.
 */
export function actionFor(key, mods, where) {
  if (mods && (mods.ctrlKey || mods.metaKey || mods.altKey)) return null;
  if (where === 'dialog') return null; // the dialog handles its own keys (Esc closes it)
  if (where === 'search') {
    if (key === 'ArrowDown') return 'next';
    if (key === 'ArrowUp') return 'previous';
    if (key === 'Enter') return 'open';
    if (key === 'Escape') return 'escape';
    return null; // typing: letters go into the box
  }
  if (where === 'text') {
    return key === 'Escape' ? 'blur' : null;
  }
  switch (key) {
    case '/': return 'focus-search';
    case '?': return 'help';
    case 'Escape': return 'escape';
    case 'ArrowDown': return 'next';
    case 'ArrowUp': return 'previous';
    default: break;
  }
  if (key.length === 1 && Object.hasOwn(LETTERS, key)) return LETTERS[key];
  return null;
}

/** Where a key press happens, from the focused element's tag, type, and whether a modal is open. */
export function whereOf(target, searchId, dialogOpen) {
  if (dialogOpen) return 'dialog';
  if (!target) return 'page';
  if (target.id === searchId) return 'search';
  const tag = (target.tagName || '').toUpperCase();
  if (tag === 'TEXTAREA' || tag === 'SELECT' || target.isContentEditable) return 'text';
  if (tag === 'INPUT') {
    const type = (target.type || 'text').toLowerCase();
    return ['button', 'checkbox', 'radio', 'submit', 'reset', 'file'].includes(type) ? 'page' : 'text';
  }
  return 'page';
}

/** The index after moving `by` from `current` among `count` items, clamped (-1: none selected). */
export function moveSelection(current, by, count) {
  if (count <= 0) return -1;
  if (current < 0) return by > 0 ? 0 : count - 1;
  return Math.max(0, Math.min(count - 1, current + by));
}
