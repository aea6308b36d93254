// Presence as the console shows it: a word for every availability (never colour alone), how
// fresh it is, and whether it comes from the demo's simulator.
import { t } from '../strings.js';
import { age, hhmm } from './time.js';

export const AVAILABILITIES = ['available', 'busy', 'do_not_disturb', 'be_right_back', 'away', 'offline', 'unknown'];

/** The availability of a presence, one of AVAILABILITIES (`unknown` for anything else or none). */
export function availabilityOf(presence) {
  const a = presence && presence.availability;
  return AVAILABILITIES.includes(a) ? a : 'unknown';
}

/** The word for an availability (`Do not disturb`). */
export function availabilityLabel(availability) {
  return t('availability.' + (AVAILABILITIES.includes(availability) ? availability : 'unknown'));
}

/** "3 min ago" for a time, '' when there is none. */
export function agoText(when, now) {
  const a = age(when, now);
  if (!a) return '';
  return t('ago.' + a.unit, { n: a.n });
}

/** The line under a name: the word, then idle / out of office, then the status message. */
export function presenceSummary(presence) {
  if (!presence) return t('noPresence');
  const parts = [availabilityLabel(availabilityOf(presence))];
  if (presence.out_of_office) parts.push(t('outOfOffice'));
  else if (presence.idle) parts.push(t('idle'));
  if (presence.until) {
    const at = hhmm(presence.until);
    if (at) parts.push(t('until', { time: at }));
  }
  return parts.join(', ');
}

/** Whether a presence comes (in part) from a backend named `simulated` (the demo's). */
export function isSimulated(presence) {
  return !!(presence && Array.isArray(presence.channels) && presence.channels.some((c) => c && c.backend === 'simulated'));
}

/** The key a person's presence is kept under: their id, or `peer/id` for a partner's person. */
export function presenceKey(id, peer) {
  return peer ? peer + '/' + id : id;
}
