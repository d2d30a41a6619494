// Notices (通知). Regulators publish to the enterprises of their
// jurisdiction (or named ones) and follow the read receipts of what they
// published; every recipient reads its notices (pushes of kind notice) and
// confirms reading.

import { fill, fmtTime, h, toast } from '../dom.js';
import { t } from '../i18n.js';

function published(uid) {
  try {
    return JSON.parse(localStorage.getItem(`yjt.published.${uid}`) || '[]');
  } catch {
    return [];
  }
}

function remember(uid, entry) {
  const list = [entry, ...published(uid)].slice(0, 20);
  localStorage.setItem(`yjt.published.${uid}`, JSON.stringify(list));
}

export function renderNotices(ctx, el) {
  const c = ctx.client;
  const uid = ctx.user.id;
  const gov = ctx.user.role === 'gov';
  const received = h('ul.list', { 'data-test': 'notices' });
  const sent = h('ul.list', { 'data-test': 'published' });
  const readKey = `yjt.read.${uid}`;
  const readSet = new Set(JSON.parse(localStorage.getItem(readKey) || '[]'));
  const fail = (e) => toast(t('error', { why: e.message }), 'error');

  function drawReceived() {
    const items = ctx.inbox.list('notice');
    fill(received, items.length ? items.map((p) => {
      const id = p.payload && p.payload.notice_id;
      const done = readSet.has(id);
      return h('li.item', { 'data-notice': id },
        h('div.row', h('strong', p.title), h('span.muted', fmtTime(p.created_at)),
          done ? h('span.tag.ok', t('read_done'))
            : h('button.primary', { 'data-test': 'mark-read', onclick: async () => {
              try {
                await c.notices.read(id);
                readSet.add(id);
                localStorage.setItem(readKey, JSON.stringify([...readSet].slice(-500)));
                drawReceived();
              } catch (e) {
                fail(e);
              }
            } }, t('mark_read'))),
        h('div', p.body));
    }) : h('li.muted', t('notices_none')));
  }

  async function drawSent() {
    const entries = published(uid);
    fill(sent, entries.map((n) => h('li.item', { 'data-notice': n.id }, h('div.row', h('strong', n.title), h('span.muted', t('loading'))))));
    for (const n of entries) {
      try {
        const r = await c.notices.receipts(n.id);
        const li = sent.querySelector(`[data-notice="${n.id}"]`);
        if (!li) continue;
        fill(li,
          h('div.row', h('strong', r.title), h('span.muted', fmtTime(r.created_at)),
            h('span.tag', { 'data-test': 'receipt-count', 'data-read': r.read.length, 'data-total': r.total },
              t('read_n', { r: r.read.length, t: r.total }))),
          r.unread.length ? h('div.muted.small', `${t('unread')}: ${r.unread.map((u) => u.display_name || u.username).join('、')}`) : null);
      } catch (e) {
        console.warn('receipts', e);
      }
    }
  }

  if (gov) {
    const title = h('input', { required: true, maxlength: 200, 'data-test': 'notice-title' });
    const body = h('textarea', { required: true, rows: 3, 'data-test': 'notice-body' });
    const kind = h('select', { 'data-test': 'notice-audience' },
      h('option', { value: 'division' }, t('audience_division')),
      h('option', { value: 'enterprises' }, t('audience_enterprises')));
    const ents = h('input', { placeholder: 'E440106001, …', 'data-test': 'notice-enterprises' });
    const requireRead = h('input', { type: 'checkbox', checked: true });
    const form = h('form.card', { onsubmit: async (e) => {
      e.preventDefault();
      const audience = kind.value === 'division'
        ? { type: 'division', division: ctx.user.org }
        : { type: 'enterprises', enterprises: ents.value.split(/[,，\s]+/).filter(Boolean) };
      try {
        const r = await c.notices.publish({ title: title.value, body: body.value, audience, require_read: requireRead.checked });
        remember(uid, { id: r.notice_id, title: title.value });
        toast(t('published', { n: r.recipients }));
        form.reset();
        drawSent();
      } catch (err) {
        fail(err);
      }
    } },
    h('h2', t('publish_notice')),
    h('label', t('title'), title), h('label', t('body'), body),
    h('label', t('audience'), kind), h('label', ents),
    h('label.check', requireRead, t('require_read')),
    h('button.primary', { type: 'submit', 'data-test': 'notice-publish' }, t('publish_notice')));
    el.append(form, h('section.card', h('div.row', h('h2', t('receipts')), h('button.link', { onclick: drawSent }, t('refresh'))), sent));
    drawSent();
  }
  el.append(h('section.card', h('h2', t('tab_notices')), received));
  drawReceived();
  return ctx.inbox.on('change', drawReceived);
}
