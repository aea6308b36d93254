// Live presence: one EventSource for the union of everyone shown (ours), one per partner for
// theirs; reopened (debounced) when the set grows or shrinks a lot, never per keystroke.
// Nothing here touches the page: the EventSource class and timers are passed in.

export const MAX_IDS = 1000;

/** The ids to follow, de-duplicated, in a stable order, at most MAX_IDS. */
export function normalizeIds(ids) {
  const seen = new Set();
  for (const id of ids || []) if (id && !seen.has(id)) seen.add(id);
  return [...seen].sort().slice(0, MAX_IDS);
}

/**
 * Whether an open stream of `open` ids can keep serving `wanted`: it covers every wanted id
 * and is not much larger (a stream kept open for people no longer shown costs the server).
 */
export function covers(open, wanted) {
  if (!open) return wanted.length === 0;
  const have = new Set(open);
  for (const id of wanted) if (!have.has(id)) return false;
  return open.length <= Math.max(2 * wanted.length, wanted.length + 60);
}

export function createLive({ EventSourceImpl, onPresence, onNotes, onOpen, onError, setTimer = setTimeout, clearTimer = clearTimeout, debounceMs = 250 }) {
  let wanted = { ours: [], peers: {} };
  // name ('' for ours, else the peer) → {ids, source}
  const streams = new Map();
  let timer = null;
  let stopped = false;

  function urlFor(name, ids) {
    const base = name ? '/api/v1/peers/' + encodeURIComponent(name) + '/presence/stream' : '/api/v1/presence/stream';
    return base + '?ids=' + ids.join(',');
  }

  function close(name) {
    const s = streams.get(name);
    if (s) {
      s.source.close();
      streams.delete(name);
    }
  }

  function open(name, ids) {
    close(name);
    if (!ids.length) return;
    const source = new EventSourceImpl(urlFor(name, ids));
    const entry = { ids, source, opened: false };
    streams.set(name, entry);
    source.addEventListener('presence', (e) => {
      let change;
      try { change = JSON.parse(e.data); } catch { return; }
      if (change && change.id) onPresence(name ? name + '/' + change.id : change.id, change.presence || null, name || null);
    });
    // Our own server says when someone's notes were set or cleared (partners' never do).
    if (!name && onNotes) {
      source.addEventListener('notes', (e) => {
        let change;
        try { change = JSON.parse(e.data); } catch { return; }
        if (change && change.id) onNotes(change);
      });
    }
    source.addEventListener('open', () => {
      entry.opened = true;
      if (onOpen) onOpen(name || null);
    });
    source.addEventListener('error', () => {
      if (streams.get(name) !== entry) return;
      // Ours failing means the server is unreachable (or refused us): the console decides.
      // A partner's failing is theirs: it is closed and retried with the next change.
      if (!name) {
        if (onError) onError(null, entry.opened);
      } else {
        close(name);
      }
    });
  }

  function apply(force) {
    timer = null;
    if (stopped) return;
    const names = new Set(['', ...Object.keys(wanted.peers)]);
    for (const name of streams.keys()) names.add(name);
    for (const name of names) {
      const ids = name ? wanted.peers[name] || [] : wanted.ours;
      const s = streams.get(name);
      if (!ids.length) close(name);
      else if (force || !s || !covers(s.ids, ids)) open(name, ids);
    }
  }

  return {
    /** Follows these people from now on (reopening after a short pause when needed). */
    follow(ours, peers) {
      const next = { ours: normalizeIds(ours), peers: {} };
      for (const [peer, ids] of Object.entries(peers || {})) {
        const n = normalizeIds(ids);
        if (n.length) next.peers[peer] = n;
      }
      wanted = next;
      if (stopped) return;
      if (timer) clearTimer(timer);
      timer = setTimer(() => apply(false), debounceMs);
    },
    /** Closes every stream (connection lost, signed out); `follow` still records the wish. */
    stop() {
      stopped = true;
      if (timer) clearTimer(timer);
      timer = null;
      for (const name of [...streams.keys()]) close(name);
    },
    /** Opens every stream anew now (after a reconnect). */
    restart() {
      stopped = false;
      if (timer) clearTimer(timer);
      apply(true);
    },
    /** What is being followed (for tests and the debugger). */
    wanted() {
      return wanted;
    },
    openIds(name = '') {
      const s = streams.get(name);
      return s ? s.ids.slice() : [];
    },
  };
}
