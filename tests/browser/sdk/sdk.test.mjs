// The JavaScript SDK (web/sdk/yjt.js) against a real yjtd: login and
// token re-login, request/response matching and error codes, pushes once
// each in order across a client restart and a server restart, acks, the
// reconnect state machine, calls' signaling, alarms, notices, commitments
// and feeds. Run: node tests/browser/sdk/sdk.test.mjs (needs `npm ci` in
// tests/browser for the ws package: node 20 has no WebSocket of its own;
// without it the run exits 77, "skipped").

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { MemoryStorage, YjtClient, YjtError, connect } from '../../../web/sdk/yjt.js';
import { PASSWORD, Yjtd, freePort, sleep, waitFor } from './harness.mjs';

const ENTERPRISES = [
  ['E1', '天河精细化工', '440106', true],
  ['E2', '番禺燃气', '440113', false],
];
const USERS = [
  { username: 'ops', role: 'admin', org: '-' },
  { username: 'gina', role: 'gov', org: '4401', display_name: '广州市值班员' },
  { username: 'far', role: 'gov', org: '4403' },
  { username: 'alice', role: 'corp', org: 'E1', position: 'principal' },
  { username: 'duty1', role: 'corp', org: 'E1', position: 'duty' },
  { username: 'bob', role: 'corp', org: 'E2', position: 'principal' },
];

let WebSocket;
try {
  ({ default: WebSocket } = await import('ws'));
} catch {
  console.log('SKIP: the ws package is not installed (run npm ci in tests/browser)');
  process.exit(77);
}

// Under the sanitizer build (ctest sets ASAN_OPTIONS) yjtd runs several
// times slower: latency bounds get that much slack.
const SLOW = process.env.ASAN_OPTIONS ? 3 : 1;

let srv;
const clients = [];

function client(device, opts = {}) {
  const c = new YjtClient(srv.wsUrl, {
    device_id: device,
    WebSocket,
    backoffBaseMs: 100,
    backoffMaxMs: 400,
    requestTimeoutMs: 5000,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** Collects a client's pushes (and events of the given types). */
function record(c, ...types) {
  const seen = { push: [], events: [] };
  c.on('push', (p) => seen.push.push(p));
  for (const t of types) c.on(t, (e) => seen.events.push(e));
  return seen;
}

before(async () => {
  srv = new Yjtd({ enterprises: ENTERPRISES, users: USERS });
  await srv.setup();
});

after(async () => {
  for (const c of clients) c.close();
  await srv.close();
});

describe('auth', () => {
  test('login resolves with the user, and the token logs in again without the password', async () => {
    const storage = new MemoryStorage();
    const c = client('auth-1', { storage });
    const states = [];
    c.on('state', (s) => states.push(s.state));
    const user = await c.login('gina', PASSWORD);
    assert.equal(user.username, 'gina');
    assert.equal(user.role, 'gov');
    assert.equal(user.id, srv.users.gina);
    assert.ok(c.token.startsWith('v1.'));
    assert.deepEqual(states, ['connecting', 'online']);
    c.close();

    const again = client('auth-1', { storage });
    const u2 = await again.resumeSession();
    assert.equal(u2.id, srv.users.gina);
    again.close();
  });

  test('connect() with a token from a REST login', async () => {
    const token = await srv.token('alice', 'rest-then-ws');
    const c = await connect(srv.wsUrl, { token, device_id: 'rest-then-ws', WebSocket });
    clients.push(c);
    assert.equal(c.user.username, 'alice');
    assert.equal(c.state, 'online');
    await assert.rejects(connect(srv.wsUrl, { token: 'v1.not-a-token', device_id: 'x', WebSocket }),
      (e) => e.code === 'unauthorized');
  });

  test('a wrong password rejects with unauthorized and stays signed out', async () => {
    const c = client('auth-2');
    const states = [];
    c.on('state', (s) => states.push(s.state));
    await assert.rejects(c.login('gina', 'not-the-password'), (e) => e instanceof YjtError && e.code === 'unauthorized');
    assert.equal(c.state, 'signed_out');
    await sleep(300); // no retry behind our back
    assert.deepEqual(states, ['connecting', 'signed_out']);
  });

  test('a revoked token signs the other connection out (4403)', async () => {
    const storage = new MemoryStorage();
    const a = client('auth-3', { storage });
    await a.login('bob', PASSWORD);
    const b = client('auth-3b', { storage: new MemoryStorage() });
    b.token = null;
    // the same token on a second connection (another device id)
    b.storage.setItem('yjt.token.auth-3b', a.token);
    await b.resumeSession();
    const signedOut = b.wait('state', (s) => s.state === 'signed_out', 5000);
    await a.logout();
    const s = await signedOut;
    assert.equal(s.code, 4403);
    assert.equal(b.token, null);
  });
});

describe('reconnect', () => {
  test('retries back off exponentially with jitter, up to the cap', async () => {
    const port = await freePort(); // nothing listens there
    const c = new YjtClient(`ws://127.0.0.1:${port}/ws`, { device_id: 'backoff-1', WebSocket, backoffBaseMs: 40, backoffMaxMs: 300 });
    clients.push(c);
    const delays = [];
    c.on('state', (s) => s.state === 'offline' && delays.push(s.delay_ms));
    c.login('gina', PASSWORD).catch(() => {});
    await waitFor(() => delays.length >= 6, 5000, 'six retries');
    c.close();
    delays.forEach((d, i) => {
      const cap = Math.min(300, 40 * 2 ** i);
      assert.ok(d >= cap / 2 && d <= cap, `retry ${i}: ${d} ms not in [${cap / 2}, ${cap}]`);
    });
    assert.ok(new Set(delays).size > 1, `no jitter: ${delays}`);
    assert.equal(c.state, 'closed');
  });
});

describe('token refresh', () => {
  test('a short-lived token is refreshed before it expires and the connection stays up', async () => {
    // a server of its own with 5 s tokens
    const short = new Yjtd({ enterprises: ENTERPRISES, users: USERS.slice(0, 2), settings: { token_ttl_s: '5' } });
    await short.setup();
    try {
      const c = new YjtClient(short.wsUrl, { device_id: 'refresh-1', WebSocket, backoffBaseMs: 100 });
      clients.push(c);
      const drops = [];
      c.on('disconnected', (d) => drops.push(d.code));
      await c.login('gina', PASSWORD);
      const first = c.token;
      const refreshed = await c.wait('token', () => true, 6000);
      assert.notEqual(c.token, first);
      assert.ok(refreshed.expires_at > Date.now());
      await sleep(2500); // past the first token's expiry
      assert.equal(await c.ping().then(() => 'up'), 'up');
      assert.deepEqual(drops, []);
      c.close();
    } finally {
      await short.close();
    }
  });
});

describe('replaced', () => {
  test('a second connection of the same device signs the first out (4409) and it does not fight back', async () => {
    const first = client('same-device');
    await first.login('far', PASSWORD);
    const out = first.wait('state', (s) => s.state === 'signed_out', 5000);
    const second = client('same-device');
    await second.login('far', PASSWORD);
    assert.equal((await out).code, 4409);
    assert.ok(first.token, 'a replaced device keeps its token');
    await sleep(500); // no reconnect from the first, so the second stays up
    assert.equal(first.state, 'signed_out');
    assert.equal(second.state, 'online');
    assert.ok((await second.ping()) >= 0);
    second.close();
  });
});

describe('requests', () => {
  test('replies match their requests, errors carry the contract code', async () => {
    const c = client('req-1');
    await c.login('gina', PASSWORD);
    const alice = client('req-alice');
    await alice.login('alice', PASSWORD);
    // several in flight at once, each answered by its own reply
    const [p1, p2, rtt] = await Promise.all([
      c.presence.query({ enterprise: 'E1' }),
      c.presence.query({ users: [srv.users.bob] }),
      c.ping(),
    ]);
    const online = Object.fromEntries(p1.users.map((u) => [u.username, u.online]));
    assert.deepEqual(online, { alice: true, duty1: false });
    assert.equal(p2.users[0].username, 'bob');
    assert.ok(rtt >= 0);

    const far = client('req-far');
    await far.login('far', PASSWORD);
    await assert.rejects(far.presence.query({ enterprise: 'E1' }), (e) => e.code === 'forbidden');
    await assert.rejects(c.request('no.such'), (e) => e.code === 'bad_request');
    const rest = await c.rest('GET', '/api/v1/me');
    assert.equal(rest.user.id, srv.users.gina);
    await assert.rejects(c.rest('GET', '/api/v1/enterprises/NOPE'), (e) => e.code === 'not_found');
  });

  test('presence.changed follows a subscription', async () => {
    const g = client('pres-gov');
    await g.login('gina', PASSWORD);
    const r = await g.presence.subscribe({ enterprise: 'E2' });
    assert.equal(r.users[0].online, false);
    const changed = g.wait('presence.changed', (e) => e.user.username === 'bob' && e.user.online, 5000);
    const b = client('pres-bob');
    await b.login('bob', PASSWORD);
    const ev = await changed;
    assert.equal(ev.user.devices[0].device_id, 'pres-bob');
  });
});

describe('pushes', () => {
  async function publish(gov, title) {
    return gov.notices.publish({ title, body: `${title} 正文`, audience: { type: 'enterprises', enterprises: ['E2'] } });
  }

  test('every push once, in order, across a client restart (resume from the last processed seq)', async () => {
    const gov = client('push-gov');
    await gov.login('gina', PASSWORD);
    const storage = new MemoryStorage();
    const bob = client('push-bob', { storage });
    const seen = record(bob);
    await bob.login('bob', PASSWORD);
    const base = seen.push.length ? seen.push.at(-1).seq : 0;
    await publish(gov, '通知一');
    await waitFor(() => seen.push.some((p) => p.title === '通知一'), 3000, 'the first notice');
    bob.close();

    await publish(gov, '通知二');
    await publish(gov, '通知三');
    const bob2 = client('push-bob', { storage });
    const seen2 = record(bob2);
    await bob2.resumeSession();
    await waitFor(() => seen2.push.length >= 2, 3000, 'the missed notices');
    assert.deepEqual(seen2.push.map((p) => p.title), ['通知二', '通知三']);
    assert.deepEqual(seen2.push.map((p) => p.seq), [base + 2, base + 3]);
    assert.equal(seen2.push[0].kind, 'notice');

    // the acks are stored on the server: the same device with its local
    // position lost resumes from there and gets nothing again
    await bob2.ping(); // the ack of the last push went out before this
    bob2.close();
    const fresh = new MemoryStorage();
    fresh.setItem('yjt.token.push-bob', storage.getItem('yjt.token.push-bob'));
    const bob3 = client('push-bob', { storage: fresh });
    const seen3 = record(bob3);
    const resumed = bob3.wait('resumed', () => true, 3000);
    await bob3.resumeSession();
    assert.equal((await resumed).last_seq, base + 3);
    assert.deepEqual(seen3.push, []);
    await publish(gov, '通知四');
    await waitFor(() => seen3.push.length === 1, 3000, 'the next notice');
    assert.equal(seen3.push[0].seq, base + 4);

    // read receipt, seen by the publisher
    const nid = seen2.push[1].payload.notice_id;
    await bob3.notices.read(nid);
    const rc = await gov.notices.receipts(nid);
    assert.deepEqual(rc.read.map((u) => u.username), ['bob']);
    const whole = await bob3.notices.get(nid);
    assert.equal(whole.title, seen2.push[1].title);
    assert.equal(whole.body, `${whole.title} 正文`);
  });

  test('the client reconnects by itself after a server restart and gets what it missed', async () => {
    const storage = new MemoryStorage();
    const bob = client('restart-bob', { storage });
    const seen = record(bob);
    const states = [];
    bob.on('state', (s) => states.push(s.state));
    await bob.login('bob', PASSWORD);
    const before = seen.push.length;
    const readyAgain = bob.wait('ready', (r) => r.reconnect, 20000);

    await srv.stop();
    await waitFor(() => bob.state === 'offline', 3000, 'offline');
    await assert.rejects(bob.ping(), (e) => e.code === 'unavailable');
    await srv.start();
    // published while the client may still be away
    const gtok = await srv.token('gina');
    for (const t of ['重启后一', '重启后二']) {
      const r = await srv.http('POST', '/api/v1/notices', {
        token: gtok,
        body: { title: t, body: t, audience: { type: 'enterprises', enterprises: ['E2'] } },
      });
      assert.equal(r.status, 201, r.text);
    }
    await readyAgain;
    await waitFor(() => seen.push.length >= before + 2, 5000, 'the pushes made across the restart').catch((e) => {
      console.log('pushes seen:', JSON.stringify({ before, pushes: seen.push.map((p) => [p.seq, p.title]), states, last: bob.lastSeq }));
      throw e;
    });
    const titles = seen.push.slice(before).map((p) => p.title);
    assert.deepEqual(titles, ['重启后一', '重启后二']);
    const seqs = seen.push.map((p) => p.seq);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'each seq once, rising');
    assert.ok(states.includes('offline') && states.at(-1) === 'online', states.join(','));
  });
});

describe('calls, alarms, commitments, feeds', () => {
  test('call.incoming reaches the callee\'s call manager (rung again: the newest offer); a decline ends the call for the caller', async () => {
    const gov = client('call-gov');
    await gov.login('gina', PASSWORD);
    const alice = client('call-alice');
    await alice.login('alice', PASSWORD);
    const incoming = alice.calls.wait('incoming', () => true, 5000);
    // Waited for from the start: the callee's client answers call.ringing as
    // soon as the call comes in, which can be before the invite's reply.
    const ringing = gov.wait('call.ringing', () => true, 5000);
    // node has no RTCPeerConnection: the caller's side by hand, with an offer's shape
    const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
    const inv = await gov.request('call.invite', { to: { user: srv.users.alice }, sdp });
    const call = await incoming;
    assert.equal(call.id, inv.call_id);
    assert.equal(call.from.id, srv.users.gina);
    assert.equal(call.state, 'ringing');
    assert.equal((await ringing).call_id, inv.call_id);
    // Rung again for the same call (as by the server that took it over):
    // the same call, now with the newest offer.
    let incomings = 0;
    alice.calls.on('incoming', () => { incomings += 1; });
    const newer = 'v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
    alice.emit('call.incoming', { type: 'call.incoming', call_id: inv.call_id, sdp: newer, from: call.from });
    assert.equal(call.offer, newer);
    assert.equal(incomings, 0);
    assert.equal(alice.calls.get(inv.call_id), call);
    const ended = gov.wait('call.ended', (e) => e.call_id === inv.call_id, 3000);
    const ce = call.wait('ended', () => true, 3000);
    await call.decline('开会中');
    assert.equal((await ended).reason, 'declined');
    assert.equal((await ce).reason, 'declined');
    assert.equal(alice.calls.get(inv.call_id), undefined);
  });

  test('call.media_lost restarts ICE once (a second one meanwhile joins it)', async () => {
    // The server sends call.media_lost only when a cluster node carrying
    // an SFU call died (tests/integration/test_cluster_calls.py); here the
    // event is handed to the client as if it came, in a real call, and
    // what the SDK then sends goes through yjtd to the other party.
    const offers = [];
    class StubPeer {
      constructor() { this.connectionState = 'new'; }
      addTransceiver() {}
      addTrack() {}
      async createOffer(opts = {}) {
        offers.push(opts);
        return { type: 'offer', sdp: `v=0\r\no=- ${offers.length} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n` };
      }
      async setLocalDescription(d) { this.localDescription = d; }
      async setRemoteDescription(d) { this.remoteDescription = d; }
      async addIceCandidate() {}
      close() {}
    }
    const gov = client('lost-gov', { rtc: { RTCPeerConnection: StubPeer } });
    await gov.login('gina', PASSWORD);
    const alice = client('lost-alice');
    await alice.login('alice', PASSWORD);
    const incoming = alice.calls.wait('incoming', () => true, 5000);
    const call = await gov.calls.invite({ user: srv.users.alice });
    await incoming;
    const accepted = call.wait('state', (st) => st === 'connecting', 5000);
    await alice.request('call.accept', { call_id: call.id, sdp: 'v=0\r\no=- 9 9 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' });
    await accepted;
    let offersHeard = 0;
    alice.on('call.renegotiate', (e) => { if (e.call_id === call.id) offersHeard += 1; });
    const reneg = alice.wait('call.renegotiate', (e) => e.call_id === call.id, 5000);
    const lost = call.wait('media-lost', () => true, 3000);
    gov.emit('call.media_lost', { type: 'call.media_lost', call_id: call.id });
    gov.emit('call.media_lost', { type: 'call.media_lost', call_id: call.id });
    await lost;
    const ev = await reneg;
    assert.equal(ev.sdp_type, 'offer');
    await waitFor(() => call.iceRestarts === 1, 3000);
    assert.deepEqual(offers.map((o) => o.iceRestart === true), [false, true]);
    await sleep(300);
    assert.equal(call.iceRestarts, 1);
    assert.equal(offersHeard, 1);
    await call.hangup();
  });

  test('an alarm raised by a reading arrives as a push and in the feed, and is acknowledged', async () => {
    await srv.sensor('E1', 'LT-1');
    const duty = client('alarm-duty');
    const seen = record(duty, 'feed.delta', 'feed.snapshot');
    await duty.login('duty1', PASSWORD);
    const sub = await duty.feeds.subscribe({ enterprise: 'E1', max_hz: 10 });
    await waitFor(() => seen.events.some((e) => e.type === 'feed.snapshot' && e.last), 3000, 'the snapshot');
    const pushed = duty.wait('push', (p) => p.kind === 'alarm', 3000);
    const t0 = Date.now();
    await srv.reading('E1', 'LT-1', 85);
    const push = await pushed;
    assert.ok(Date.now() - t0 < 1000 * SLOW, `the alarm push took ${Date.now() - t0} ms`);
    assert.equal(push.payload.sensor, 'LT-1');
    await waitFor(() => seen.events.some((e) => e.type === 'feed.delta' && (e.alarms || []).some((a) => a.id === push.payload.alarm_id)),
      2000, 'the alarm in a feed delta');
    const r = await duty.alarms.ack(push.payload.alarm_id);
    assert.equal(r.alarm.state, 'acknowledged');
    await assert.rejects(duty.alarms.ack(push.payload.alarm_id), (e) => e.code === 'conflict');
    const list = await duty.alarms.list({ state: 'open' });
    assert.equal(list.alarms.find((a) => a.id === push.payload.alarm_id).acked_by, srv.users.duty1);
    await duty.feeds.unsubscribe(sub.feed_id);
  });

  test('a commitment filed through the SDK leaves the enterprise off the missing list', async () => {
    const bob = client('commit-bob');
    await bob.login('bob', PASSWORD);
    const gov = client('commit-gov');
    await gov.login('gina', PASSWORD);
    const before = await gov.commitments.day({ division: '4401' });
    assert.ok(before.missing.some((m) => m.enterprise === 'E2'));
    const r = await bob.commitments.submit({
      units: { total: 2, running: 2, stopped: 0 },
      hazard_sources: [],
      special_ops: {},
      trial_production: false,
      pilot_test: false,
      startup_shutdown: false,
      units_maintenance: 0,
      contractors_on_site: 3,
      major_hidden_danger: false,
      risk_grade: 4,
      committer: '王五',
      statement: '今日已进行安全风险研判，承诺安全生产。',
    });
    assert.equal(r.commitment.enterprise, 'E2');
    const day = await gov.commitments.day({ division: '4401' });
    assert.ok(!day.missing.some((m) => m.enterprise === 'E2'));
    assert.ok(day.commitments.some((c) => c.enterprise === 'E2' && c.risk_grade === 4));
  });
});
