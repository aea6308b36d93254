// The stale-response guard: each request takes a ticket; only the newest ticket may show its
// answer, so a slow answer to an old keystroke never overwrites a newer one.

export function createLatest() {
  let issued = 0;
  let controller = null;
  return {
    /** A ticket for a new request; aborts the one before, when it can. */
    begin() {
      issued += 1;
      if (controller) controller.abort();
      controller = typeof AbortController === 'function' ? new AbortController() : null;
      return { n: issued, signal: controller ? controller.signal : undefined };
    },
    /** Whether `ticket` is still the newest one (its answer may be shown). */
    isCurrent(ticket) {
      return !!ticket && ticket.n === issued;
    },
    /** Forgets every ticket issued so far (their answers will be dropped). */
    invalidate() {
      issued += 1;
      if (controller) controller.abort();
      controller = null;
    },
  };
}
