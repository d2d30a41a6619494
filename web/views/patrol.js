// gov: the video patrol of key enterprises (视频巡查). Start a patrol (the
// queue of key enterprises of the jurisdiction), call each one with the
// patrol's id, note the result and findings, finish with a summary and read
// the report; below, today's coverage of key enterprises. Joining an
// inspection as a viewer needs the multi-party video service, which does
// not exist yet: the button says so.

import { fill, fmtTime, h, toast } from '../dom.js';
import { t } from '../i18n.js';

const KEY = 'yjt.patrol';
const POSITIONS = ['principal', 'safety_manager', 'duty'];

export function renderPatrol(ctx, el) {
  const c = ctx.client;
  const patrolBox = h('section.card', { 'data-test': 'patrol' });
  const coverageBox = h('section.card', { 'data-test': 'coverage' });
  el.append(patrolBox, coverageBox);
  let stopped = false;

  const fail = (e) => toast(t('error', { why: e.message }), 'error');

  async function drawCoverage() {
    try {
      const r = await c.patrols.coverage();
      if (stopped) return;
      fill(coverageBox,
        h('h2', t('coverage_today')),
        h('p.big', { 'data-test': 'coverage-rate', 'data-patrolled': r.patrolled, 'data-total': r.total },
          t('coverage_rate', { p: r.patrolled, t: r.total, rate: Math.round((r.rate || 0) * 100) })),
        h('div.meter', h('div.fill', { style: `width:${Math.round((r.rate || 0) * 100)}%` })),
        h('ul.list', r.enterprises.map((e) =>
          h('li.item.row', { 'data-enterprise': e.enterprise, 'data-patrolled': e.patrolled ? '1' : '0' },
            h('span', e.name), h(`span.tag${e.patrolled ? '.ok' : '.warn'}`, e.patrolled ? t('patrolled') : t('not_patrolled')),
            e.answered_s ? h('span.muted', `${e.answered_s}s`) : null))));
    } catch (e) {
      fail(e);
    }
  }

  function drawStart() {
    fill(patrolBox,
      h('h2', t('tab_patrol')),
      h('p.muted', t('patrol_none')),
      h('div.row',
        h('button.primary', { 'data-test': 'patrol-start', onclick: start }, t('start_key_patrol')),
        h('button', { disabled: true, 'data-test': 'join-viewer', title: t('not_available') }, t('join_viewer')),
        h('span.muted.small', { 'data-test': 'join-viewer-note' }, t('not_available'))));
  }

  async function start() {
    try {
      const r = await c.patrols.start({ scope: 'key' });
      localStorage.setItem(KEY, r.patrol_id);
      await drawPatrol(r.patrol_id);
    } catch (e) {
      fail(e);
    }
  }

  async function drawPatrol(id) {
    let report;
    try {
      report = (await c.patrols.report(id)).report;
    } catch (e) {
      localStorage.removeItem(KEY);
      drawStart();
      return;
    }
    if (stopped) return;
    if (report.status === 'finished') {
      drawReport(report);
      return;
    }
    const summary = h('textarea', { rows: 2, 'data-test': 'patrol-summary', placeholder: t('summary') });
    fill(patrolBox,
      h('h2', `${t('patrol_queue')} · ${report.date}`),
      h('ol.list', { 'data-test': 'patrol-items' }, report.items.map((it) => item(id, it))),
      h('label', t('summary'), summary),
      h('div.row',
        h('button.primary', { 'data-test': 'patrol-finish', onclick: () => finish(id, summary.value) }, t('finish_patrol')),
        h('button', { disabled: true, 'data-test': 'join-viewer', title: t('not_available') }, t('join_viewer')),
        h('span.muted.small', t('not_available'))));
  }

  function item(id, it) {
    const result = h('select', { 'data-test': 'note-result' },
      h('option', { value: 'normal', selected: it.result !== 'issue' }, t('result_normal')),
      h('option', { value: 'issue', selected: it.result === 'issue' }, t('result_issue')));
    const findings = h('textarea', { rows: 2, 'data-test': 'note-findings', placeholder: t('findings'), value: it.findings || '' });
    const noted = h('span.tag.ok', { hidden: !it.noted_at, 'data-test': 'noted' }, t('noted'));
    return h('li.item', { 'data-enterprise': it.enterprise },
      h('div.row', h('strong', it.name || it.enterprise), it.key ? h('span.tag.key', t('key')) : null,
        h('button.primary', { 'data-test': 'patrol-call', onclick: () =>
          ctx.calls.start({ enterprise: it.enterprise, positions: POSITIONS }, { label: it.name, patrol_id: id }).catch(() => {}) }, t('call')),
        noted),
      h('div.note', result, findings,
        h('button', { 'data-test': 'note-save', onclick: async () => {
          try {
            await c.patrols.note(id, it.enterprise, result.value, findings.value);
            noted.hidden = false;
          } catch (e) {
            fail(e);
          }
        } }, t('save_note'))));
  }

  async function finish(id, summary) {
    try {
      const r = await c.patrols.finish(id, summary);
      localStorage.removeItem(KEY);
      drawReport(r.report);
      drawCoverage();
    } catch (e) {
      fail(e);
    }
  }

  function drawReport(rep) {
    const tot = rep.totals || {};
    fill(patrolBox,
      h('h2', `${t('report')} · ${rep.date}`),
      h('p', { 'data-test': 'report-totals' },
        `${t('reached')} ${tot.reached ?? 0} / ${tot.enterprises ?? rep.items.length} · ${t('result_normal')} ${tot.normal ?? 0} · ${t('result_issue')} ${tot.issue ?? 0}`),
      rep.summary ? h('p', rep.summary) : null,
      h('ul.list', { 'data-test': 'report-items' }, rep.items.map((it) =>
        h('li.item', { 'data-enterprise': it.enterprise, 'data-reached': it.reached ? '1' : '0' },
          h('div.row', h('strong', it.name || it.enterprise),
            h(`span.tag${it.reached ? '.ok' : '.warn'}`, it.reached ? t('reached') : t('not_reached')),
            it.result ? h(`span.tag${it.result === 'issue' ? '.warn' : ''}`, t(`result_${it.result}`)) : null,
            h('span.muted', fmtTime(it.noted_at))),
          it.findings ? h('div.muted', it.findings) : null))),
      h('button.primary', { 'data-test': 'patrol-new', onclick: drawStart }, t('start_key_patrol')));
  }

  const id = localStorage.getItem(KEY);
  if (id) drawPatrol(id);
  else drawStart();
  drawCoverage();
  const off = c.on('call.ended', () => setTimeout(drawCoverage, 300));
  return () => {
    stopped = true;
    off();
  };
}
