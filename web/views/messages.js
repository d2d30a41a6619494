// The user's messages: the durable push inbox (alarms, notices, reminders,
// missed calls). The latest pushes are read over REST once after login;
// from then on the SDK hands over every push, live or resumed after a
// reconnect, each once. The view lists them newest first.

import { Emitter } from '../sdk/emitter.js';
import { fill, fmtTime, h } from '../dom.js';
import { t } from '../i18n.js';

const HISTORY = 50;

export class Inbox extends Emitter {
  constructor(client) {
    super();
    this.client = client;
    this.items = new Map(); // seq -> push
    this.unread = 0;
    this.loadedFor = null;
    client.on('push', (p) => {
      if (this.items.has(p.seq)) return;
      this.items.set(p.seq, p);
      this.unread += 1;
      this.emit('change');
    });
    client.on('ready', () => this.load());
  }

  clear() {
    this.items.clear();
    this.unread = 0;
    this.loadedFor = null;
  }

  /** Reads the latest HISTORY pushes once per user. */
  async load() {
    const uid = this.client.user && this.client.user.id;
    if (!uid || this.loadedFor === uid) return;
    this.loadedFor = uid;
    try {
      const head = (await this.client.rest('GET', '/api/v1/inbox?limit=1')).head || 0;
      const r = await this.client.rest('GET', `/api/v1/inbox?after_seq=${Math.max(0, head - HISTORY)}&limit=${HISTORY}`);
      for (const p of r.items) if (!this.items.has(p.seq)) this.items.set(p.seq, p);
      this.emit('change');
    } catch (e) {
      this.loadedFor = null;
      console.warn('inbox', e);
    }
  }

  /** Newest first. */
  list(kind) {
    const all = [...this.items.values()].sort((a, b) => b.seq - a.seq);
    return kind ? all.filter((p) => p.kind === kind) : all;
  }
}

export function renderMessages(ctx, el) {
  ctx.inbox.unread = 0;
  const list = h('ul.list', { 'data-test': 'messages' });
  const draw = () => {
    const items = ctx.inbox.list();
    fill(list, items.length ? items.map((p) =>
      h(`li.item.kind-${p.kind}${p.priority === 'high' ? '.high' : ''}`, { 'data-seq': p.seq, 'data-kind': p.kind },
        h('div.row', h('strong', p.title || p.kind), h('span.muted', fmtTime(p.created_at))),
        p.body && h('div.muted', p.body))) : h('li.muted', t('messages_none')));
  };
  draw();
  el.append(h('section.card', h('h2', t('tab_messages')), list));
  return ctx.inbox.on('change', () => {
    ctx.inbox.unread = 0;
    draw();
  });
}
