// The duty console: boot, login, the header with the connection state and
// the language switch, and the tabs of each role. Every screen is a view
// module (views/*.js) that renders into the main area and returns a
// function that stops it. All traffic goes through the SDK (sdk/yjt.js).

import { YjtClient } from './sdk/yjt.js';
import { fill, h, toast } from './dom.js';
import { onLangChange, t, toggleLang } from './i18n.js';
import { renderLogin } from './views/login.js';
import { Inbox, renderMessages } from './views/messages.js';
import { renderEnterprises } from './views/enterprises.js';
import { renderPatrol } from './views/patrol.js';
import { renderAlarms } from './views/alarms.js';
import { renderNotices } from './views/notices.js';
import { renderCommitments } from './views/commitments.js';
import { renderTrs } from './views/trs.js';
import { CallUi } from './views/callview.js';

const TABS = {
  gov: [
    ['alarms', 'tab_alarms', renderAlarms],
    ['enterprises', 'tab_enterprises', renderEnterprises],
    ['patrol', 'tab_patrol', renderPatrol],
    ['commitments', 'tab_commitments', renderCommitments],
    ['notices', 'tab_notices', renderNotices],
    ['messages', 'tab_messages', renderMessages],
  ],
  corp: [
    ['alarms', 'tab_alarms', renderAlarms],
    ['commitments', 'tab_commitments', renderCommitments],
    ['notices', 'tab_notices', renderNotices],
    ['messages', 'tab_messages', renderMessages],
  ],
  trs: [
    ['vehicles', 'tab_vehicles', renderTrs],
    ['messages', 'tab_messages', renderMessages],
  ],
};
TABS.admin = [TABS.gov[0], TABS.gov[1], TABS.gov[5]]; // operators: alarms, enterprises, messages

const root = document.getElementById('app');

function deviceId() {
  let id = localStorage.getItem('yjt.device');
  if (!id) {
    id = `web-${crypto.getRandomValues(new Uint32Array(2)).join('')}`;
    localStorage.setItem('yjt.device', id);
  }
  return id;
}

function wsUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

const client = new YjtClient(wsUrl(), {
  device_id: deviceId(),
  platform: 'web',
  storage: localStorage,
  // A test or a locked-down desk may say which ICE candidates to signal.
  rtc: { candidateFilter: window.yjtCandidateFilter || null },
});
window.yjt = client; // for the browser console and the tests

const ctx = { client, user: null, inbox: new Inbox(client), calls: new CallUi(client), tab: null };
let stopTab = null;

function statusText(state) {
  return { online: t('online'), offline: t('offline'), connecting: t('connecting'), signed_out: t('signed_out') }[state] || state;
}

function renderHeader() {
  const state = client.state;
  return h('header.bar',
    h('h1', t('app_title')),
    h(`span.conn.${state}`, { 'data-test': 'conn', 'data-state': state, title: state }, h('span.dot'), statusText(state)),
    ctx.user && h('span.who', `${ctx.user.display_name || ctx.user.username} · ${t(`role_${ctx.user.role}`)}`),
    h('button.link', { onclick: toggleLang, 'data-test': 'lang' }, t('lang_other')),
    ctx.user && h('button.link', { onclick: logout, 'data-test': 'logout' }, t('logout')));
}

function renderShell() {
  const tabs = TABS[ctx.user.role] || [];
  if (!ctx.tab || !tabs.some(([id]) => id === ctx.tab)) ctx.tab = tabs[0][0];
  const main = h('main#main');
  const nav = h('nav.tabs', tabs.map(([id, label]) =>
    h(`button.tab${id === ctx.tab ? '.active' : ''}`, { 'data-tab': id, onclick: () => go(id) },
      t(label), id === 'messages' ? h('span.badge', { 'data-test': 'unread' }, ctx.inbox.unread || '') : null)));
  fill(root, renderHeader(), nav, main);
  if (stopTab) stopTab();
  const [, , render] = tabs.find(([id]) => id === ctx.tab);
  stopTab = render(ctx, main) || null;
}

function go(tab) {
  ctx.tab = tab;
  renderShell();
}
ctx.go = go;

function rerender() {
  if (ctx.user) renderShell();
  else showLogin();
}

function showLogin(error) {
  if (stopTab) stopTab();
  stopTab = null;
  fill(root, renderHeader(), h('main#main', renderLogin(login, error)));
}

async function login(username, password) {
  try {
    ctx.user = await client.login(username, password);
  } catch (e) {
    showLogin(t('login_failed', { why: e.message }));
    return;
  }
  renderShell();
}

async function logout() {
  try {
    await client.logout();
  } catch {}
  ctx.user = null;
  ctx.inbox.clear();
  showLogin();
}

client.on('state', ({ state, code }) => {
  const el = root.querySelector('[data-test=conn]');
  if (el) el.replaceWith(renderHeader().querySelector('[data-test=conn]'));
  if (state === 'signed_out' && ctx.user) {
    ctx.user = null;
    // 4409: this browser's device connected again (another tab or window)
    showLogin(code === 4409 ? t('replaced') : t('signed_out'));
  }
});
client.on('ready', ({ reconnect }) => {
  if (reconnect) toast(t('reconnected'));
});
ctx.inbox.on('change', () => {
  if (ctx.tab === 'messages') ctx.inbox.unread = 0;
  const b = root.querySelector('[data-test=unread]');
  if (b) b.textContent = ctx.inbox.unread || '';
});
window.addEventListener('online', () => client.retryNow());
onLangChange(rerender);
document.documentElement.lang = 'zh-CN';

if (client.token) {
  fill(root, renderHeader(), h('main#main', h('p.muted', t('loading'))));
  client.resumeSession().then((u) => {
    ctx.user = u;
    renderShell();
  }, () => showLogin());
} else {
  showLogin();
}
