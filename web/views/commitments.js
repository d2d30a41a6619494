// The daily commitment announcement (安全风险研判与承诺公告). Regulators see
// the day of their division: how many filed, how many late, who has not
// filed. A plant files today's form (or a corrected version) and sees what
// it filed.

import { fill, fmtTime, h, toast } from '../dom.js';
import { t } from '../i18n.js';

export function renderCommitments(ctx, el) {
  return ctx.user.role === 'corp' ? renderForm(ctx, el) : renderDay(ctx, el);
}

function renderDay(ctx, el) {
  const box = h('section.card', { 'data-test': 'commitments-day' }, h('p.muted', t('loading')));
  el.append(box);
  const load = async () => {
    try {
      const r = await ctx.client.commitments.day();
      const tot = r.totals || {};
      fill(box,
        h('div.row', h('h2', `${t('tab_commitments')} · ${r.date}`), h('button.link', { onclick: load }, t('refresh'))),
        h('p.big', { 'data-test': 'commitments-totals', 'data-missing': tot.missing },
          t('filed_today', { f: tot.filed ?? 0, s: tot.should_file ?? 0, l: tot.late ?? 0 })),
        h('h3', t('missing_today')),
        h('ul.list', { 'data-test': 'missing' }, r.missing.length
          ? r.missing.map((m) => h('li.item.row', { 'data-enterprise': m.enterprise }, h('strong', m.name), h('span.muted', `${m.enterprise} · ${m.division}`)))
          : h('li.muted', t('all_filed'))),
        h('h3', t('tab_commitments')),
        h('ul.list', r.commitments.map((cm) => h('li.item.row', { 'data-enterprise': cm.enterprise },
          h('strong', cm.enterprise_name || cm.enterprise),
          h(`span.tag.grade-${cm.risk_grade}`, `${t('risk_grade')} ${t(`grade_${cm.risk_grade}`)}`),
          cm.late ? h('span.tag.warn', 'late') : null,
          h('span.muted', fmtTime(cm.filed_at))))));
    } catch (e) {
      fill(box, h('p.error', t('error', { why: e.message })));
    }
  };
  load();
}

function num(name, value = 0) {
  return h('input', { type: 'number', min: 0, max: 100000, value: String(value), name, 'data-test': `c-${name}` });
}

function renderForm(ctx, el) {
  const c = ctx.client;
  const status = h('p', { 'data-test': 'commitment-status' }, t('loading'));
  const sources = h('div.sources');
  const f = {
    total: num('total', 1), running: num('running', 1), stopped: num('stopped', 0),
    hot: num('hot_work_1'), confined: num('confined_space'), contractors: num('contractors'), maintenance: num('maintenance'),
  };
  const danger = h('input', { type: 'checkbox' });
  const grade = h('select', { 'data-test': 'c-grade' }, [4, 3, 2, 1].map((g) => h('option', { value: g }, t(`grade_${g}`))));
  const committer = h('input', { required: true, maxlength: 64, 'data-test': 'c-committer', value: ctx.user.display_name || '' });
  const statement = h('textarea', { required: true, rows: 3, 'data-test': 'c-statement', value: t('statement_default') });
  let hazard = [];

  const showStatus = (cm) => {
    status.textContent = cm ? t('commitment_filed', { v: cm.version, at: fmtTime(cm.filed_at) }) : t('commitment_not_filed');
    status.dataset.filed = cm ? '1' : '0';
  };

  const form = h('form.card', { 'data-test': 'commitment-form', onsubmit: async (e) => {
    e.preventDefault();
    const n = (i) => Number(i.value) || 0;
    try {
      const r = await c.commitments.submit({
        units: { total: n(f.total), running: n(f.running), stopped: n(f.stopped) },
        hazard_sources: hazard.map((s) => ({ id: s.id, controlled: s.box.checked })),
        special_ops: { hot_work_1: n(f.hot), confined_space: n(f.confined) },
        trial_production: false, pilot_test: false, startup_shutdown: false,
        units_maintenance: n(f.maintenance), contractors_on_site: n(f.contractors),
        major_hidden_danger: danger.checked, risk_grade: Number(grade.value),
        committer: committer.value, statement: statement.value,
      });
      showStatus(r.commitment);
    } catch (err) {
      toast(t('error', { why: err.message }), 'error');
    }
  } },
  h('h2', t('commitment_form')), status,
  h('div.grid',
    h('label', t('units_total'), f.total), h('label', t('units_running'), f.running), h('label', t('units_stopped'), f.stopped),
    h('label', t('hot_work'), f.hot), h('label', t('confined_space'), f.confined),
    h('label', t('maintenance'), f.maintenance), h('label', t('contractors'), f.contractors),
    h('label', t('risk_grade'), grade)),
  sources,
  h('label.check', danger, t('major_danger')),
  h('label', t('committer'), committer), h('label', t('statement'), statement),
  h('button.primary', { type: 'submit', 'data-test': 'c-submit' }, t('submit')));
  el.append(form);

  c.rest('GET', `/api/v1/enterprises/${encodeURIComponent(ctx.user.org)}`).then((r) => {
    hazard = ((r.enterprise && r.enterprise.hazard_sources) || []).map((s) => ({ ...s, box: h('input', { type: 'checkbox', checked: true }) }));
    fill(sources, hazard.map((s) => h('label.check', s.box, s.name || s.id)));
  }).catch(() => {});
  // the day's list, which for a plant holds its own filing if there is one
  c.commitments.day().then((r) => showStatus(r.commitments.find((x) => x.enterprise === ctx.user.org) || null), () => showStatus(null));
}
