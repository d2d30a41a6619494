// yjt.js: the reference JavaScript client of the yjt app contract
// (docs/protocol.md). One YjtClient is one device of one user: it keeps a
// WebSocket to yjtd open, logs in (password once, then the stored token),
// reconnects by itself with backoff and jitter, resumes the durable push
// inbox from the last push it processed and acknowledges what it handled,
// matches replies to requests with timeouts, and hands server events to
// listeners. Calls (call.js) wire the call.* messages to an
// RTCPeerConnection.
//
// It runs unchanged in a browser (the global WebSocket and fetch) and in
// node (pass a WebSocket constructor, e.g. the `ws` package's, and node's
// global fetch). No build step: a plain ES module.
//
//   import { YjtClient } from './sdk/yjt.js';
//   const c = new YjtClient('ws://127.0.0.1:8080/ws', { device_id: 'desk-1' });
//   c.on('push', (p) => console.log(p.kind, p.title));
//   const user = await c.login('gina', 'secret-password');
//   const { users } = await c.presence.query({ enterprise: 'E440106001' });

import { Emitter } from './emitter.js';
import { CallManager } from './call.js';

/** An error reply of the contract: code is one of bad_request, unauthorized, …; unavailable when the connection dropped; timeout when no reply came. */
export class YjtError extends Error {
  constructor(code, message, reply) {
    super(`${code}: ${message}`);
    this.code = code;
    this.reply = reply || null;
  }
}

/** Close codes after which reconnecting with the same credentials is pointless. */
const FINAL_CLOSES = {
  4401: 'token invalid or expired',
  4403: 'account disabled or token revoked',
  4409: 'replaced by a newer connection of this device',
};

/** A Map-backed stand-in for localStorage. */
export class MemoryStorage {
  constructor() {
    this.m = new Map();
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}

/**
 * The client. Events (on(type, fn)):
 *  - 'state' {state, attempt?, delay_ms?, code?, reason?}: 'connecting', 'online',
 *    'offline' (will retry), 'signed_out' (needs a login), 'closed' (close() called)
 *  - 'ready' {user, reconnect}: authenticated and the inbox resumed (after every (re)connection)
 *  - 'push' the push event, once per seq, in order; 'resumed' {last_seq, head}
 *  - 'token' {expires_at}: the token was refreshed (auth.refresh) and stored
 *  - 'disconnected' {code, reason}: the WebSocket closed
 *  - every other server event by its type: 'call.incoming', 'presence.changed',
 *    'feed.snapshot', 'feed.delta', …
 */
export class YjtClient extends Emitter {
  /**
   * @param {string} url  ws:// or wss:// URL of /ws
   * @param {object} opts
   * @param {string} opts.device_id  stable per device (across reconnects)
   * @param {string} [opts.platform='web']
   * @param {Function} [opts.WebSocket]  constructor; default globalThis.WebSocket
   * @param {Function} [opts.fetch]  for rest(); default globalThis.fetch
   * @param {object} [opts.storage]  getItem/setItem/removeItem, e.g. localStorage; keeps the token and push position
   * @param {number} [opts.requestTimeoutMs=10000]
   * @param {number} [opts.backoffBaseMs=500]  first retry delay; doubles, up to backoffMaxMs, with jitter
   * @param {number} [opts.backoffMaxMs=15000]
   * @param {boolean} [opts.autoAck=true]  push.ack each push after the 'push' listeners ran
   * @param {object} [opts.rtc]  for calls: {RTCPeerConnection, candidateFilter(candidateString) → bool}
   */
  constructor(url, opts = {}) {
    super();
    if (!opts.device_id) throw new Error('device_id is required');
    this.url = url;
    this.deviceId = opts.device_id;
    this.platform = opts.platform || 'web';
    this.WS = opts.WebSocket || globalThis.WebSocket;
    this.fetchFn = opts.fetch || (globalThis.fetch && globalThis.fetch.bind(globalThis));
    this.storage = opts.storage || new MemoryStorage();
    this.requestTimeoutMs = opts.requestTimeoutMs || 10000;
    this.backoffBaseMs = opts.backoffBaseMs || 500;
    this.backoffMaxMs = opts.backoffMaxMs || 15000;
    this.autoAck = opts.autoAck !== false;
    if (!this.WS) throw new Error('no WebSocket constructor: pass opts.WebSocket');

    this.state = 'idle';
    this.user = null;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, timer, type}
    this.attempt = 0;
    this.retryTimer = null;
    this.credentials = null; // {username, password} until the first successful login
    this.lastSeq = 0; // highest push seq processed (loaded per user after auth)
    this.resuming = false;
    this.held = new Map(); // pushes that arrived during a resume, by seq
    this.everReady = false;

    this.presence = bindAll(this, presenceApi);
    this.alarms = bindAll(this, alarmApi);
    this.notices = bindAll(this, noticeApi);
    this.commitments = bindAll(this, commitmentApi);
    this.feeds = bindAll(this, feedApi);
    this.patrols = bindAll(this, patrolApi);
    this.calls = new CallManager(this, opts.rtc || {});
  }

  // ------------------------------------------------------------ storage

  get token() {
    return this.storage.getItem(`yjt.token.${this.deviceId}`);
  }

  set token(t) {
    if (t) this.storage.setItem(`yjt.token.${this.deviceId}`, t);
    else this.storage.removeItem(`yjt.token.${this.deviceId}`);
  }

  seqKey() {
    return `yjt.seq.${this.user ? this.user.id : '?'}.${this.deviceId}`;
  }

  // ------------------------------------------------------------ connection

  /**
   * Logs in with a password and connects; resolves with the user once
   * ready (authenticated, inbox resumed). Later drops reconnect with the
   * token the login returned.
   */
  login(username, password) {
    this.credentials = { username, password };
    this.token = null;
    return this.start();
  }

  /**
   * Connects with the stored token (from an earlier login on this device);
   * resolves with the user once ready, rejects with YjtError('unauthorized')
   * when there is no token or it is no longer valid.
   */
  resumeSession() {
    if (!this.token) return Promise.reject(new YjtError('unauthorized', 'no stored token'));
    this.credentials = null;
    return this.start();
  }

  start() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    const first = new Promise((resolve, reject) => {
      const offReady = this.once('ready', ({ user }) => {
        offFail();
        resolve(user);
      });
      const offFail = this.once('auth_failed', (err) => {
        offReady();
        reject(err);
      });
    });
    this.open();
    return first;
  }

  /** Closes for good (no reconnect); the stored token stays for resumeSession(). */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    const ws = this.ws;
    // Detach first: a push still in flight on this socket must not be
    // taken as processed (a later client of this device resumes after it).
    this.ws = null;
    this.failPending('closed by the client');
    if (ws) ws.close(1000);
    this.setState('closed');
  }

  failPending(why) {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new YjtError('unavailable', `${why} before the ${p.type} reply`));
      this.pending.delete(id);
    }
  }

  /** auth.logout: revokes the token and closes. */
  async logout() {
    try {
      await this.request('auth.logout');
    } finally {
      this.token = null;
      this.close();
    }
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('state', { state, ...extra });
  }

  get online() {
    return this.state === 'online';
  }

  open() {
    if (this.stopped) return;
    this.setState('connecting', { attempt: this.attempt });
    let ws;
    try {
      ws = new this.WS(this.url, 'yjt.v1');
    } catch (e) {
      this.scheduleRetry(0, String(e.message || e));
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.authenticate(ws);
    ws.onmessage = (ev) => this.onFrame(ws, ev.data);
    ws.onclose = (ev) => this.onClose(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // a close follows
  }

  async authenticate(ws) {
    const base = { device_id: this.deviceId, platform: this.platform };
    let reply;
    try {
      if (this.token) {
        reply = await this.request('auth.token', { ...base, token: this.token }, { ws, allowOffline: true });
      } else if (this.credentials) {
        reply = await this.request('auth.login', { ...base, ...this.credentials }, { ws, allowOffline: true });
      } else {
        throw new YjtError('unauthorized', 'no token and no password');
      }
    } catch (e) {
      if (ws !== this.ws) return;
      if (e.code === 'unauthorized' || e.code === 'forbidden' || e.code === 'rate_limited') {
        // Wrong password, expired token, locked account: a person must act.
        this.token = null;
        this.stopped = true;
        ws.close(1000);
        this.setState('signed_out', { reason: e.message, code: e.code });
        this.emit('auth_failed', e);
      } else {
        ws.close(4000);
      }
      return;
    }
    if (ws !== this.ws) return;
    this.credentials = null; // from now on, the token
    if (reply.token) this.token = reply.token;
    const reconnect = this.everReady;
    this.user = reply.user;
    this.scheduleRefresh(reply.expires_at);
    const stored = this.storage.getItem(this.seqKey());
    this.lastSeq = Number(stored || 0);
    this.seqKnown = stored !== null;
    this.attempt = 0;
    this.setState('online');
    try {
      await this.resumeInbox();
    } catch (e) {
      if (ws === this.ws) ws.close(4000);
      return;
    }
    this.everReady = true;
    this.emit('ready', { user: this.user, reconnect });
  }

  /**
   * push.resume from the last processed seq until the inbox head. Pushes
   * that arrive meanwhile are held and handed out in seq order once the
   * reply says how far the resume got: a push made just before the resume
   * reaches the server may come live, ahead of older ones the resume then
   * sends, and taking it first would make those look like duplicates. A
   * device that kept no position (storage cleared) resumes from the
   * position the server stored for it with its acks.
   */
  async resumeInbox() {
    this.resuming = true;
    this.held = new Map();
    try {
      for (let round = 0; round < 1000; round++) {
        const from = this.seqKnown || round > 0 ? { after_seq: this.lastSeq } : {};
        const r = await this.request('push.resume', from);
        this.releaseHeld(r.last_seq);
        // pushes passed over (expired, trimmed) count as processed
        if (r.last_seq > this.lastSeq) this.markProcessed(r.last_seq);
        if (this.autoAck && this.lastSeq > 0) await this.request('push.ack', { seq: this.lastSeq });
        this.emit('resumed', { last_seq: r.last_seq, head: r.head });
        if (!r.more) break;
      }
    } finally {
      this.resuming = false;
      // live pushes that came after the resume caught up, in order
      this.releaseHeld(Infinity);
    }
  }

  /** Hands out the held pushes up to seq limit, lowest first. */
  releaseHeld(limit) {
    const seqs = [...this.held.keys()].filter((s) => s <= limit).sort((a, b) => a - b);
    for (const seq of seqs) {
      const p = this.held.get(seq);
      this.held.delete(seq);
      this.deliverPush(p);
    }
  }

  /**
   * Tokens expire (token_ttl_s, 12 h by default) and the server then closes
   * the connection: refresh at 80 % of the remaining lifetime, and keep the
   * new token for the next reconnect.
   */
  scheduleRefresh(expiresAt) {
    clearTimeout(this.refreshTimer);
    this.tokenExpiresAt = expiresAt;
    if (!expiresAt) return;
    const delay = Math.max(1000, Math.min(0x7fffffff, (expiresAt - Date.now()) * 0.8));
    this.refreshTimer = setTimeout(async () => {
      try {
        const r = await this.request('auth.refresh');
        this.token = r.token;
        this.emit('token', { expires_at: r.expires_at });
        this.scheduleRefresh(r.expires_at);
      } catch {
        // offline: the next authentication schedules again
      }
    }, delay);
  }

  markProcessed(seq) {
    this.seqKnown = true;
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    this.storage.setItem(this.seqKey(), String(seq));
  }

  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.failPending(`connection closed (${code})`);
    clearTimeout(this.refreshTimer);
    this.emit('disconnected', { code, reason });
    if (this.stopped) return;
    if (FINAL_CLOSES[code]) {
      if (code !== 4409) this.token = null;
      this.stopped = true;
      this.setState('signed_out', { code, reason: FINAL_CLOSES[code] });
      return;
    }
    // 1001 (server restarting) and everything else: try again.
    this.scheduleRetry(code, reason);
  }

  /** Backoff: base × 2^attempt, capped, then a random half of it as jitter. */
  scheduleRetry(code, reason) {
    const cap = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(this.attempt, 16));
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
    this.attempt += 1;
    this.setState('offline', { code, reason, attempt: this.attempt, delay_ms: delay });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Reconnects now instead of waiting out the backoff (e.g. the page came back online). */
  retryNow() {
    if (this.state !== 'offline') return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  onFrame(ws, data) {
    if (ws !== this.ws) return;
    let msg;
    try {
      msg = JSON.parse(typeof data === 'string' ? data : data.toString());
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if ('re' in msg) {
      const p = this.pending.get(msg.re);
      if (!p) return;
      this.pending.delete(msg.re);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg);
      else {
        const err = msg.error || {};
        p.reject(new YjtError(err.code || 'internal', err.message || 'error', msg));
      }
      return;
    }
    if (msg.type === 'push') {
      this.onPush(msg);
      return;
    }
    if (typeof msg.type === 'string') this.emit(msg.type, msg);
  }

  /** A push event: held while a resume runs, else handed out. */
  onPush(p) {
    if (typeof p.seq !== 'number') return;
    if (this.resuming) this.held.set(p.seq, p);
    else this.deliverPush(p);
  }

  /** Each seq once, in order; acknowledged after the listeners ran. */
  deliverPush(p) {
    if (p.seq <= this.lastSeq) return;
    this.emit('push', p);
    this.markProcessed(p.seq);
    if (this.autoAck && !this.resuming) this.request('push.ack', { seq: p.seq }).catch(() => {});
  }

  /**
   * Sends one request and resolves with its reply ({re, ok: true, …}), or
   * rejects with a YjtError (the server's error code; 'unavailable' when
   * offline or the connection drops; 'timeout').
   * @param {string} type
   * @param {object} [fields]
   * @param {{timeoutMs?: number}} [o]
   */
  request(type, fields = {}, o = {}) {
    const ws = o.ws || this.ws;
    if (!ws || ws.readyState !== 1 || (!o.allowOffline && this.state !== 'online')) {
      return Promise.reject(new YjtError('unavailable', `offline: ${type} not sent`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new YjtError('timeout', `no reply to ${type} within ${o.timeoutMs || this.requestTimeoutMs} ms`));
      }, o.timeoutMs || this.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer, type });
      ws.send(JSON.stringify({ ...fields, id, type }));
    });
  }

  /**
   * A REST call with this device's token: rest('GET', '/api/v1/alarms?state=open').
   * Resolves with the JSON body; rejects with a YjtError for an error status.
   */
  async rest(method, path, body) {
    if (!this.fetchFn) throw new Error('no fetch: pass opts.fetch');
    const base = this.url.replace(/^ws/, 'http').replace(/\/ws$/, '');
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await this.fetchFn(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => null);
    if (!res.ok) {
      const err = (json && json.error) || {};
      throw new YjtError(err.code || `http_${res.status}`, err.message || res.statusText, json);
    }
    return json;
  }

  /** ping: resolves with the round trip in milliseconds. */
  async ping() {
    const t0 = Date.now();
    await this.request('ping');
    return Date.now() - t0;
  }
}

/**
 * Creates a client and connects it: with {username, password} (auth.login)
 * or {token} (auth.token, e.g. from a REST login); resolves with the
 * client once ready. Other options as for YjtClient.
 *
 *   const c = await connect('ws://127.0.0.1:8080/ws', { username, password, device_id: 'd1' });
 */
export async function connect(url, { token, username, password, ...opts } = {}) {
  const client = new YjtClient(url, opts);
  if (token) {
    client.token = token;
    await client.resumeSession();
  } else {
    await client.login(username, password);
  }
  return client;
}

// ------------------------------------------------------------ thin wrappers, one per area

function bindAll(client, api) {
  const out = {};
  for (const [k, fn] of Object.entries(api)) out[k] = fn.bind(null, client);
  return out;
}

const presenceApi = {
  /** who: {users: [...]} | {enterprise} | {carrier} → {users: [...]} */
  query: (c, who) => c.request('presence.query', who),
  /** the same, and presence.changed events for them from now on (renew after 'ready' with reconnect) */
  subscribe: (c, who) => c.request('presence.subscribe', who),
  unsubscribe: (c) => c.request('presence.unsubscribe'),
};

const alarmApi = {
  list: (c, query = {}) => c.rest('GET', `/api/v1/alarms?${new URLSearchParams(query)}`),
  ack: (c, alarmId) => c.request('alarm.ack', { alarm_id: alarmId }),
  feedback: (c, alarmId, found, done) => c.request('alarm.feedback', { alarm_id: alarmId, found, done }),
  close: (c, alarmId, note) => c.request('alarm.close', note ? { alarm_id: alarmId, note } : { alarm_id: alarmId }),
};

const noticeApi = {
  /** {title, body, audience, require_read?, attachments?} → {notice_id, recipients} */
  publish: (c, notice) => c.request('notice.publish', notice),
  read: (c, noticeId) => c.request('notice.read', { notice_id: noticeId }),
  /** The whole notice (a push carries at most 4000 bytes of its body: payload.body_cut) */
  get: (c, noticeId) => c.request('notice.get', { notice_id: noticeId }),
  receipts: (c, noticeId) => c.rest('GET', `/api/v1/notices/${encodeURIComponent(noticeId)}/receipts`),
};

const commitmentApi = {
  submit: (c, form) => c.request('commitment.submit', form),
  /** the day for a division: {commitments, missing, districts, totals} */
  day: (c, query = {}) => c.rest('GET', `/api/v1/commitments?${new URLSearchParams(query)}`),
  mine: (c, enterprise, date) =>
    c.rest('GET', `/api/v1/commitments/${encodeURIComponent(enterprise)}${date ? `?date=${date}` : ''}`),
};

const feedApi = {
  /** scope: {enterprise} | {park} | {division}, max_hz?; then feed.snapshot and feed.delta events */
  subscribe: (c, scope) => c.request('feed.subscribe', scope),
  unsubscribe: (c, feedId) => c.request('feed.unsubscribe', { feed_id: feedId }),
};

const patrolApi = {
  /** {scope: 'key'} or {enterprises: [...]} → {patrol_id, items} */
  start: (c, what) => c.request('patrol.start', what),
  note: (c, patrolId, enterprise, result, findings) =>
    c.request('patrol.note', { patrol_id: patrolId, enterprise, result, findings }),
  finish: (c, patrolId, summary) => c.request('patrol.finish', { patrol_id: patrolId, summary }),
  coverage: (c, query = {}) => c.rest('GET', `/api/v1/patrols/coverage?${new URLSearchParams(query)}`),
  report: (c, patrolId) => c.rest('GET', `/api/v1/patrols/${encodeURIComponent(patrolId)}`),
};
