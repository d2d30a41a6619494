// Live alarms. The open alarms are read once over REST, then kept current
// by a feed (feed.subscribe on the regulator's division or the plant's
// enterprise: every raise, upgrade, acknowledgement and close arrives in a
// feed.delta within the feed's rate), renewed after every reconnect.
// The plant's alarm staff acknowledge, give feedback and close here;
// a duty regulator acknowledges the alarms escalated to it (a receipt at
// its level: the plant's own lifecycle stays the plant's).

import { fill, fmtTime, h, toast } from '../dom.js';
import { t } from '../i18n.js';

const LEVEL_ORDER = { red: 0, orange: 1, yellow: 2, blue: 3 };

export function renderAlarms(ctx, el) {
  const c = ctx.client;
  const corp = ctx.user.role === 'corp';
  const alarms = new Map();
  const list = h('ul.list.alarms', { 'data-test': 'alarms' }, h('li.muted', t('loading')));
  el.append(h('section.card',
    h('div.row', h('h2', t('alarms_live')), h('span.live', { 'data-test': 'alarm-count' })),
    corp ? null : h('p.muted.small', t('gov_cannot_act')),
    list));
  let feedId = null;
  let stopped = false;
  const names = new Map(); // enterprise id -> name

  const fail = (e) => toast(t('error', { why: e.message }), 'error');
  const act = async (fn) => {
    try {
      const r = await fn();
      if (r && r.alarm) upsert(r.alarm);
    } catch (e) {
      fail(e);
    }
  };

  function upsert(a) {
    if (a.state === 'closed') alarms.delete(a.id);
    else alarms.set(a.id, { ...(alarms.get(a.id) || {}), ...a });
    draw();
  }

  // The escalation step that reached this regulator, if any.
  function escalatedToMe(a) {
    return (a.escalations || []).filter((e) => (e.users || []).includes(ctx.user.id)).pop();
  }

  function actions(a) {
    if (!corp) {
      const step = escalatedToMe(a);
      if (!step) return null;
      if ((step.receipts || []).some((r) => r.user === ctx.user.id)) {
        return h('span.tag', { 'data-test': 'receipted' }, t('receipted'));
      }
      return h('button.primary', { 'data-test': 'ack', onclick: () => act(() => c.alarms.ack(a.id)) },
        t('ack_escalation'));
    }
    if (a.state === 'raised') {
      return h('button.primary', { 'data-test': 'ack', onclick: () => act(() => c.alarms.ack(a.id)) }, t('ack'));
    }
    if (a.state === 'acknowledged') {
      const found = h('input', { placeholder: t('found'), 'data-test': 'found' });
      const done = h('input', { placeholder: t('done'), 'data-test': 'done' });
      return h('form.inline', { onsubmit: (e) => {
        e.preventDefault();
        act(() => c.alarms.feedback(a.id, found.value, done.value));
      } }, found, done, h('button', { type: 'submit', 'data-test': 'feedback' }, t('feedback')));
    }
    if (a.state === 'handled') {
      const note = h('input', { placeholder: t('close_note'), 'data-test': 'close-note' });
      return h('form.inline', { onsubmit: (e) => {
        e.preventDefault();
        act(() => c.alarms.close(a.id, note.value));
      } }, note, h('button', { type: 'submit', 'data-test': 'close' }, t('close_alarm')));
    }
    return null;
  }

  function draw() {
    if (stopped) return;
    const items = [...alarms.values()].sort((x, y) =>
      (LEVEL_ORDER[x.level] ?? 9) - (LEVEL_ORDER[y.level] ?? 9) || (y.raised_at || 0) - (x.raised_at || 0));
    const count = el.querySelector('[data-test=alarm-count]');
    if (count) count.textContent = String(items.length);
    fill(list, items.length ? items.map((a) =>
      h(`li.item.alarm.level-${a.level}`, { 'data-alarm': a.id, 'data-state': a.state },
        h('div.row',
          h(`span.level.${a.level}`, t(`level_${a.level}`)),
          h('strong', a.enterprise_name || names.get(a.enterprise) || a.enterprise),
          h('span', `${a.sensor} · ${t(`grade_${a.grade || a.condition}`)}`),
          a.value !== undefined ? h('span', `${a.value}${a.unit || ''}${a.threshold !== undefined ? ` / ${a.threshold}` : ''}`) : null,
          h(`span.tag.state-${a.state}`, { 'data-test': 'alarm-state' }, t(`state_${a.state}`)),
          h('span.muted', fmtTime(a.raised_at))),
        actions(a))) : h('li.muted', t('alarms_none')));
  }

  async function follow() {
    const scope = corp ? { enterprise: ctx.user.org } : { division: ctx.user.org };
    try {
      feedId = (await c.feeds.subscribe({ ...scope, max_hz: 5 })).feed_id;
    } catch (e) {
      console.warn('feed', e);
    }
  }

  async function load() {
    try {
      const r = await c.alarms.list({ state: 'open', limit: 200 });
      alarms.clear();
      for (const a of r.alarms) alarms.set(a.id, a);
      draw();
    } catch (e) {
      fail(e);
    }
  }

  const offs = [
    c.on('feed.snapshot', (ev) => {
      if (ev.feed_id !== feedId) return;
      // Part 0 starts the view again; the open alarms follow the sensors
      // over as many parts as they need.
      if (ev.part === 0) alarms.clear();
      for (const a of ev.alarms || []) alarms.set(a.id, a);
      if (ev.part === 0 || (ev.alarms || []).length) draw();
    }),
    c.on('feed.delta', (ev) => {
      if (ev.feed_id !== feedId) return;
      for (const a of ev.alarms || []) upsert(a);
    }),
    c.on('ready', ({ reconnect }) => {
      if (reconnect) follow();
    }),
  ];
  c.rest('GET', '/api/v1/enterprises?limit=500').then((r) => {
    for (const e of r.enterprises) names.set(e.id, e.name);
    draw();
  }, () => {});
  load().then(follow);
  return () => {
    stopped = true;
    offs.forEach((f) => f());
    if (feedId) c.feeds.unsubscribe(feedId).catch(() => {});
  };
}
