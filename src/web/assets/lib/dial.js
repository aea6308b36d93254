// Phone numbers: what to dial, what to copy, which number is best.

/** The digits to dial for a phone: E.164 when known, else the digits as written (+ * # kept). */
export function dialDigits(phone) {
  if (!phone) return '';
  if (phone.e164) return phone.e164;
  const written = phone.raw || phone.display || phone.extension || '';
  return String(written).replace(/[^0-9+*#]/g, '');
}

/** A `tel:` URI (RFC 3966) for a phone, with `;ext=` for an extension behind a full number. */
export function telUri(phone) {
  const digits = dialDigits(phone);
  if (!digits) return '';
  const ext = phone.extension ? String(phone.extension).replace(/[^0-9*#]/g, '') : '';
  if (ext && phone.e164 && ext !== digits) return 'tel:' + digits + ';ext=' + ext;
  return 'tel:' + digits;
}

/** What a copy button puts on the clipboard: the dial string, with `,ext` when there is one. */
export function copyString(phone) {
  const digits = dialDigits(phone);
  if (!digits) return '';
  const ext = phone.extension ? String(phone.extension).replace(/[^0-9*#]/g, '') : '';
  return ext && phone.e164 && ext !== digits ? digits + ',' + ext : digits;
}

function dialable(phones, kind) {
  return (phones || []).find((p) => p.kind === kind && dialDigits(p));
}

/** The number to call someone on: work (or their extension), else mobile, else any. */
export function bestPhone(person) {
  const phones = (person && person.phones) || [];
  return dialable(phones, 'work') || dialable(phones, 'extension') || dialable(phones, 'mobile')
    || phones.find((p) => p.kind !== 'fax' && dialDigits(p)) || null;
}

/** Their mobile, if any. */
export function mobilePhone(person) {
  return dialable((person && person.phones) || [], 'mobile') || null;
}

/** Their first email, if any. */
export function firstEmail(person) {
  return (person && person.emails && person.emails[0]) || null;
}

/** The scheme of an IM URI (`xmpp`, `msteams`…), lower case; '' when it has none. */
export function imScheme(uri) {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(uri || '');
  return m ? m[1].toLowerCase() : '';
}

/** An IM handle without its scheme, for showing (`jane@chat.example.com`). */
export function imLabel(uri) {
  const scheme = imScheme(uri);
  let rest = scheme ? uri.slice(scheme.length + 1) : uri || '';
  if (rest.startsWith('//')) rest = rest.slice(2);
  try { rest = decodeURIComponent(rest); } catch { /* kept as is */ }
  return rest;
}

const SAFE_SCHEMES = ['xmpp', 'msteams', 'matrix', 'sip', 'sips', 'slack', 'tel', 'im', 'https'];

/** Whether an IM URI may be a link (never `javascript:` and the like). */
export function linkableIm(uri) {
  return SAFE_SCHEMES.includes(imScheme(uri));
}
