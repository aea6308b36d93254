// Retry delays after a lost connection: doubling from `base` to `max`, with up to `jitter` of
// randomness so a room full of consoles does not come back at the same instant.

export function backoffDelay(attempt, { base = 1000, max = 30000, jitter = 0.2, random = Math.random } = {}) {
  const n = Math.max(0, attempt | 0);
  const plain = Math.min(max, base * 2 ** Math.min(n, 20));
  const spread = plain * jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(max, plain + spread)));
}
