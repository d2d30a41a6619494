// gov: the enterprises of the jurisdiction, key ones first, with who of
// each is online now (presence.subscribe, renewed after a reconnect), and a
// video call to an enterprise (its principal and safety managers) or to one
// person.

import { fill, h, toast } from '../dom.js';
import { t } from '../i18n.js';

const CALL_POSITIONS = ['principal', 'safety_manager', 'duty'];

export function renderEnterprises(ctx, el) {
  const list = h('ul.list', { 'data-test': 'enterprises' }, h('li.muted', t('loading')));
  el.append(h('section.card', h('h2', t('tab_enterprises')), list));
  const people = new Map(); // enterprise -> Map(user id -> user)
  let enterprises = [];
  let stopped = false;

  const draw = () => {
    if (stopped) return;
    fill(list, enterprises.map((e) => {
      const users = [...(people.get(e.id) || new Map()).values()];
      const on = users.filter((u) => u.online);
      return h('li.item', { 'data-enterprise': e.id },
        h('div.row',
          h('strong', e.name), e.key ? h('span.tag.key', t('key')) : null,
          h('span.muted', `${e.id} · ${e.division}`),
          h(`span.presence${on.length ? '.on' : ''}`, { 'data-test': 'online-count', 'data-n': on.length },
            on.length ? t('online_now', { n: on.length }) : t('nobody_online')),
          h('button.primary', { 'data-test': 'call-enterprise', onclick: () => ctx.calls.start({ enterprise: e.id, positions: CALL_POSITIONS }, { label: e.name }).catch(() => {}) }, t('call'))),
        on.length ? h('div.people', on.map((u) =>
          h('button.chip', { 'data-user': u.id, onclick: () => ctx.calls.start({ user: u.id }, { label: `${e.name} ${u.display_name || u.username}` }).catch(() => {}) },
            h('span.dot.on'), `${u.display_name || u.username}`, h('span.muted', ` ${t('call_user')}`)))) : null);
    }));
  };

  const subscribe = async () => {
    for (const e of enterprises) {
      try {
        const r = await ctx.client.presence.subscribe({ enterprise: e.id });
        people.set(e.id, new Map(r.users.map((u) => [u.id, u])));
      } catch (err) {
        console.warn('presence', e.id, err);
      }
    }
    draw();
  };

  const load = async () => {
    try {
      const r = await ctx.client.rest('GET', '/api/v1/enterprises?limit=500');
      enterprises = r.enterprises.sort((a, b) => (b.key ? 1 : 0) - (a.key ? 1 : 0) || a.id.localeCompare(b.id));
      draw();
      await subscribe();
    } catch (e) {
      toast(t('error', { why: e.message }), 'error');
    }
  };

  const offs = [
    ctx.client.on('presence.changed', ({ user }) => {
      const m = people.get(user.org);
      if (!m) return;
      m.set(user.id, user);
      draw();
    }),
    ctx.client.on('ready', ({ reconnect }) => reconnect && subscribe()),
  ];
  load();
  return () => {
    stopped = true;
    offs.forEach((f) => f());
    ctx.client.presence.unsubscribe().catch(() => {});
  };
}
