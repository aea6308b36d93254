// Times as the console shows them: "as of 14:05", "3 min ago". Pure; `now` is passed in.

function pad(n) {
  return n < 10 ? '0' + n : String(n);
}

/** `HH:MM` (24-hour, local time) of a Date or an RFC 3339 string; '' when it is not a time. */
export function hhmm(when) {
  const d = when instanceof Date ? when : new Date(when);
  if (Number.isNaN(d.getTime())) return '';
  return pad(d.getHours()) + ':' + pad(d.getMinutes());
}

/**
 * How long ago `when` was, as `{unit, n}`: unit `now` (under a minute, or in the future),
 * `minutes`, `hours` or `days`; null when `when` is not a time.
 */
export function age(when, now) {
  const d = when instanceof Date ? when : new Date(when);
  if (when == null || Number.isNaN(d.getTime())) return null;
  const seconds = Math.floor(((now instanceof Date ? now.getTime() : now) - d.getTime()) / 1000);
  if (seconds < 60) return { unit: 'now', n: 0 };
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return { unit: 'minutes', n: minutes };
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return { unit: 'hours', n: hours };
  return { unit: 'days', n: Math.floor(hours / 24) };
}

/** A short date and time for tables: `14:05` today, else `2024-03-01 14:05`. */
export function shortDateTime(when, now) {
  const d = when instanceof Date ? when : new Date(when);
  if (Number.isNaN(d.getTime())) return '';
  const n = now instanceof Date ? now : new Date(now);
  const sameDay = d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate();
  if (sameDay) return hhmm(d);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hhmm(d);
}

/** The value of a `datetime-local` input as RFC 3339 (with the browser's offset), or null. */
export function localInputToRfc3339(value) {
  if (!value) return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString();
}

/** A Date as the value of a `datetime-local` input (local time, minutes). */
export function toLocalInput(when) {
  const d = when instanceof Date ? when : new Date(when);
  if (Number.isNaN(d.getTime())) return '';
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + hhmm(d);
}
