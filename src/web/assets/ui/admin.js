// The admin area: sync runs, presence backends' health, file import, the audit trail.
import { h } from '../dom.js';
import { t } from '../strings.js';
import { icon } from './icons.js';
import { shortDateTime, toLocalInput, localInputToRfc3339 } from '../lib/time.js';

function table(headers, rows, label) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'group', 'aria-labelledby': label }, h('table', { class: 'table', 'aria-labelledby': label },
    h('thead', null, h('tr', null, headers.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows)));
}

function statusBadge(status) {
  const s = String(status || '');
  const tone = /^(up|ok|success|succeeded|finished|done)$/i.test(s) ? 'ok' : /^(down|failed|error)$/i.test(s) ? 'bad' : 'neutral';
  return h('span', { class: ['badge', 'badge-' + tone] }, s);
}

function rejectList(items) {
  return h('ul', { class: 'reject-list' }, items.slice(0, 200).map((r) => h('li', null,
    r.line != null ? h('span', { class: 'muted' }, t('line', { n: r.line }) + ' · ') : null,
    r.dn ? h('span', { class: 'mono' }, r.dn + ' · ') : null,
    r.external_id ? h('span', { class: 'mono' }, r.external_id + ' · ') : null,
    r.reason)));
}

export function createAdmin(root, ctx) {
  const { api } = ctx;
  const now = () => new Date();

  // Presence backends
  const healthBody = h('div', { class: 'admin-body' });
  const health = h('section', { class: 'panel', 'aria-labelledby': 'admin-health-h' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'admin-health-h' }, t('healthHeading')),
      h('button', { type: 'button', class: 'button ghost', onclick: () => loadHealth() }, icon('refresh'), h('span', null, t('refresh')))),
    healthBody);

  async function loadHealth() {
    try {
      const r = await api.get('/readyz');
      const rows = (r.presence || []).map((b) => h('tr', null,
        h('th', { scope: 'row' }, b.name), h('td', null, b.kind), h('td', null, statusBadge(b.circuit_open ? 'down' : b.status)),
        h('td', null, b.detail || ''), h('td', { class: 'num' }, String(b.failures)), h('td', { class: 'num' }, String(b.tracked))));
      healthBody.replaceChildren(
        r.indexed_people != null ? h('p', { class: 'muted' }, t('indexed', { n: r.indexed_people.toLocaleString() })) : null,
        rows.length ? table([t('backendName'), t('backendKind'), t('backendStatus'), t('backendDetail'), t('backendFailures'), t('backendTracked')], rows, 'admin-health-h')
          : h('p', { class: 'muted' }, t('noBackends')));
    } catch (e) {
      healthBody.replaceChildren(h('p', { class: 'error' }, ctx.errorText(e)));
    }
  }

  // Sync runs
  const runsBody = h('div', { class: 'admin-body' });
  const runDetail = h('div', { class: 'run-detail', id: 'run-detail', 'aria-live': 'polite' });
  const runs = h('section', { class: 'panel', 'aria-labelledby': 'admin-runs-h' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'admin-runs-h' }, t('runsHeading')),
      h('button', { type: 'button', class: 'button ghost', onclick: () => loadRuns() }, icon('refresh'), h('span', null, t('refresh')))),
    runsBody, runDetail);

  async function loadRuns() {
    try {
      const r = await api.get('/api/v1/sync/runs?limit=20');
      const rows = r.items.map((run) => h('tr', null,
        h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link-button', onclick: () => openRun(run.id) }, '#' + run.id)),
        h('td', null, run.source), h('td', null, run.kind + (run.mode ? ' · ' + run.mode : '')), h('td', null, statusBadge(run.status)),
        h('td', null, shortDateTime(run.started_at, now())),
        h('td', { class: 'num' }, [run.added, run.updated, run.removed, run.rejected].join(' / '))));
      runsBody.replaceChildren(rows.length
        ? table([t('runDetail', { id: '' }).trim(), t('runSource'), t('runKind'), t('runStatus'), t('runStarted'), t('runCounts')], rows, 'admin-runs-h')
        : h('p', { class: 'muted' }, t('noRuns')));
    } catch (e) {
      runsBody.replaceChildren(h('p', { class: 'error' }, ctx.errorText(e)));
    }
  }

  async function openRun(id) {
    runDetail.replaceChildren(h('p', { class: 'muted' }, t('cardLoading')));
    try {
      const d = await api.get('/api/v1/sync/runs/' + encodeURIComponent(id));
      const run = d.run;
      runDetail.replaceChildren(h('div', { class: 'subpanel' },
        h('h3', { id: 'run-detail-h', tabindex: '-1' }, t('runDetail', { id: run.id }) + ' · ' + run.source),
        h('p', null, statusBadge(run.status), ' ', t('importCounts', run)),
        run.error ? h('p', { class: 'error' }, t('runError', { error: run.error })) : null,
        h('details', null, h('summary', null, t('runChanges', { n: d.changes.length })),
          h('ul', { class: 'reject-list' }, d.changes.slice(0, 200).map((c) => h('li', null, h('span', { class: 'badge badge-neutral' }, c.kind), ' ', c.display_name, ' ', h('span', { class: 'muted mono' }, c.external_id))))),
        h('details', { open: d.rejects.length > 0 }, h('summary', null, t('runRejects', { n: d.rejects.length })), rejectList(d.rejects)),
        h('details', null, h('summary', null, t('runWarnings', { n: d.warnings.length })), rejectList(d.warnings))));
      runDetail.querySelector('h3').focus();
    } catch (e) {
      runDetail.replaceChildren(h('p', { class: 'error' }, ctx.errorText(e)));
    }
  }

  // Import
  const file = h('input', { id: 'import-file', type: 'file', accept: '.csv,.txt,.xlsx,.vcf,.vcard,.ldif,text/csv' });
  const source = h('input', { id: 'import-source', type: 'text', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}', maxlength: '64', autocomplete: 'off', value: 'upload' });
  const dry = h('input', { id: 'import-dry', type: 'checkbox', checked: true });
  const importResult = h('div', { class: 'import-result', 'aria-live': 'polite' });
  const importButton = h('button', { type: 'submit', class: 'button primary' }, t('importButton'));
  const importForm = h('form', { class: 'panel import-form', 'aria-labelledby': 'admin-import-h' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'admin-import-h' }, t('importHeading'))),
    h('div', { class: 'form-grid' },
      h('div', { class: 'field' }, h('label', { for: 'import-file' }, t('importFile')), file),
      h('div', { class: 'field' }, h('label', { for: 'import-source' }, t('importSource')), source),
      h('div', { class: 'field field-check' }, dry, h('label', { for: 'import-dry' }, t('importDryRun')))),
    h('div', { class: 'form-actions' }, importButton),
    importResult);
  importForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = file.files && file.files[0];
    if (!f) { importResult.replaceChildren(h('p', { class: 'error', role: 'alert' }, t('importNoFile'))); return; }
    importButton.disabled = true;
    importResult.replaceChildren(h('p', { class: 'muted' }, t('importing')));
    try {
      const q = '?source=' + encodeURIComponent(source.value.trim()) + '&dry_run=' + (dry.checked ? 'true' : 'false');
      const r = await api.upload('/api/v1/imports' + q, f);
      importResult.replaceChildren(
        h('p', null, t('importFormat', { format: r.format })),
        h('p', { class: 'strong' }, t('importCounts', r.counts)),
        h('p', { class: 'muted' }, r.dry_run ? t('importDry') : (r.run_id != null ? t('importRun', { id: r.run_id }) : '')),
        h('details', { open: r.rejects.length > 0 }, h('summary', null, t('runRejects', { n: r.rejects.length })), rejectList(r.rejects)),
        h('details', { open: r.warnings.length > 0 && r.warnings.length < 20 }, h('summary', null, t('runWarnings', { n: r.warnings.length })), rejectList(r.warnings)),
        h('details', null, h('summary', null, t('runChanges', { n: r.changes_total })),
          h('ul', { class: 'reject-list' }, r.changes.slice(0, 200).map((c) => h('li', null, h('span', { class: 'badge badge-neutral' }, c.kind), ' ', c.display_name)))));
      if (!r.dry_run) loadRuns();
    } catch (err) {
      importResult.replaceChildren(h('p', { class: 'error', role: 'alert' }, ctx.errorText(err)));
    } finally {
      importButton.disabled = false;
    }
  });

  // Audit
  const since = h('input', { id: 'audit-since', type: 'datetime-local', value: toLocalInput(new Date(Date.now() - 24 * 3600 * 1000)) });
  const filter = h('input', { id: 'audit-filter', type: 'search', autocomplete: 'off' });
  const auditBody = h('div', { class: 'admin-body' });
  const older = h('button', { type: 'button', class: 'button', disabled: true }, t('auditOlder'));
  const newer = h('button', { type: 'button', class: 'button', disabled: true }, t('auditNewer'));
  const audit = h('section', { class: 'panel panel-wide', 'aria-labelledby': 'admin-audit-h' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'admin-audit-h' }, t('auditHeading'))),
    h('form', { class: 'form-row', onsubmit: (e) => { e.preventDefault(); pages = [null]; loadAudit(); } },
      h('div', { class: 'field' }, h('label', { for: 'audit-since' }, t('auditSince')), since),
      h('button', { type: 'submit', class: 'button' }, t('auditLoad')),
      h('div', { class: 'field grow' }, h('label', { for: 'audit-filter' }, t('auditFilter')), filter)),
    auditBody,
    h('div', { class: 'pager' }, older, newer));
  let pages = [null];
  let records = [];
  let nextAfter = null;

  function renderAudit() {
    const needle = filter.value.trim().toLowerCase();
    const shown = needle ? records.filter((r) => JSON.stringify(r).toLowerCase().includes(needle)) : records;
    const rows = shown.map((r) => h('tr', null,
      h('td', { class: 'nowrap' }, shortDateTime(r.at, now())),
      h('td', { class: 'mono nowrap' }, r.principal),
      h('td', null, r.action),
      h('td', null, [r.query, r.people && r.people.length ? t('auditPeople', { n: r.people.length }) : null, r.address].filter(Boolean).join(' · ')),
      h('td', { class: 'num' }, r.status ? String(r.status) : '')));
    auditBody.replaceChildren(rows.length
      ? table([t('auditAt'), t('auditPrincipal'), t('auditAction'), t('auditDetail'), t('auditStatus')], rows, 'admin-audit-h')
      : h('p', { class: 'muted' }, t('auditNone')));
    older.disabled = pages.length <= 1;
    newer.disabled = nextAfter == null;
  }

  async function loadAudit() {
    const after = pages[pages.length - 1];
    const p = new URLSearchParams({ limit: '100' });
    const s = localInputToRfc3339(since.value);
    if (s) p.set('since', s);
    if (after != null) p.set('after', String(after));
    try {
      const r = await api.get('/api/v1/audit?' + p.toString());
      records = r.items || [];
      nextAfter = r.next_after != null ? r.next_after : null;
      renderAudit();
    } catch (e) {
      auditBody.replaceChildren(h('p', { class: 'error' }, ctx.errorText(e)));
    }
  }
  filter.addEventListener('input', renderAudit);
  newer.addEventListener('click', () => { if (nextAfter != null) { pages.push(nextAfter); loadAudit(); } });
  older.addEventListener('click', () => { if (pages.length > 1) { pages.pop(); loadAudit(); } });

  root.replaceChildren(
    h('h1', { id: 'admin-title', class: 'page-title', tabindex: '-1' }, t('adminHeading')),
    h('div', { class: 'admin-grid' }, health, runs, importForm, audit));

  return {
    load() {
      loadHealth();
      loadRuns();
      loadAudit();
    },
  };
}
