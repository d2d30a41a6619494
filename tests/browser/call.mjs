#!/usr/bin/env node
// End-to-end call test in headless Chromium: two pages, each logged in to
// yjtd as a user, call each other through yjtd's signaling and must both
// decode the other's (fake) camera video; then one hangs up and both must
// get call.ended. With --relay both peers are relay-only
// (iceTransportPolicy "relay") through the TURN server whose credentials
// yjtd issues, and the selected candidate pair must be relay on both sides.
// With --sfu the call is made with "mode":"sfu": each page's peer
// connection ends at yjtd's media server, which forwards the video; each
// selected pair's remote end must be yjtd's (a candidate from its SDP).
//
//   node call.mjs --ws ws://127.0.0.1:8080/ws --caller gov1 --callee corp1 \
//       [--relay --turn-url turn:127.0.0.1:3478?transport=udp --turn-secret S] [--sfu]
//       [--hold-s N: keep the call up N s after both decode, and report the stats again]
//       [--viewer USER: with --sfu, USER joins the answered call as a viewer (call.join)
//        and must decode both parties' video; then leaves (call.leave)]
//       [--speaker USER: with --sfu, USER joins as a speaker (camera on): it decodes both
//        parties, and both parties, offered a section for it by yjtd, decode it]
//       [--ice-restart: with --sfu, after the hold the caller restarts ICE (call.renegotiate)
//        and both must go on decoding]
//       [--failover WS2 --kill-pid PID: with --sfu, the callee connects to WS2 (a second
//        node of a cluster), the caller to --ws (the node that holds the call); once both
//        decode, PID (the caller's node) is killed with SIGKILL: the callee must hear
//        call.media_lost and restart ICE, the caller must reconnect to WS2, resume and
//        restart ICE, and both must decode again through the surviving node]
//       [--failover-ringing: with --failover, the caller's node is killed while the call
//        still rings: the callee must be rung again by the surviving node and answer its
//        offer, the caller must reconnect there and resume, and both must decode]
//       [--loss-pct P: with --sfu, all media between the pages and yjtd goes through a UDP
//        relay here that drops P % of the datagrams each way]
//       [--tcp-only: the pages stand for devices on a network that blocks UDP: they drop
//        every UDP candidate, their own and yjtd's, and the selected pair must be TCP
//        (ICE-TCP) on both sides]
//   node call.mjs --mode selftest [--turn-url URL --turn-secret S]
//   node call.mjs --mode werift --ws URL --caller gov1 --callee corp1 --ivf VIDEO.ivf
//
// --mode werift: the caller is not a browser but werift (npm), an
// independent WebRTC stack in Node, calling through yjtd's SFU; it sends
// the VP8 frames of VIDEO.ivf (30 fps, looped). The callee is a Chromium
// page: it must decode werift's video, and werift must receive the page's
// camera video (RTP with a VP8 key frame) through the server.
//
// --mode selftest needs no yjtd: one page connects two RTCPeerConnections
// over loopback and decodes video, and (with --turn-*) gathers relay
// candidates from the TURN server with credentials made here, right and
// wrong. It checks the machine, not yjt.
//
// Passwords: --password, else $YJT_PASSWORD. The TURN secret may also come
// from $YJT_TURN_SECRET. Chromium: --chromium, else $CHROMIUM, else
// /usr/bin/chromium (never a browser downloaded by Playwright).
// Progress goes to stderr. stdout gets "RESULT <json>" (what was measured),
// then, on failure, "FAIL: <why>"; the exit status is 0 when every check
// passed, 1 otherwise.

import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import dgram from 'node:dgram';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PAGE_DIR = path.join(HERE, 'page');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  // Nothing may leave the machine. Even with the flags above, Chromium
  // looks up Google's hosts at start (sign-in, updates): resolve nothing but
  // loopback names. And its WebRTC mDNS responder joins the mDNS multicast
  // group on every interface: not needed, since host candidates are signalled
  // with their addresses once the page holds the camera.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

const started = Date.now();
function log(msg) {
  process.stderr.write(`[call.mjs ${((Date.now() - started) / 1000).toFixed(2)}s] ${msg}\n`);
}

class Failure extends Error {}
function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

function turnCredential(secret, username) {
  return createHmac('sha1', secret).update(username).digest('base64');
}

// ---------------------------------------------------------------- options

const { values: opt } = parseArgs({
  options: {
    mode: { type: 'string', default: 'call' },
    ws: { type: 'string', default: process.env.YJT_WS_URL || '' },
    caller: { type: 'string', default: '' },
    callee: { type: 'string', default: '' },
    password: { type: 'string', default: process.env.YJT_PASSWORD || '' },
    relay: { type: 'boolean', default: false },
    sfu: { type: 'boolean', default: false },
    viewer: { type: 'string', default: '' },
    'loss-pct': { type: 'string', default: '0' },
    ivf: { type: 'string', default: '' },
    'ice-restart': { type: 'boolean', default: false },
    'tcp-only': { type: 'boolean', default: false },
    speaker: { type: 'string', default: '' },
    failover: { type: 'string', default: '' },
    'failover-ringing': { type: 'boolean', default: false },
    'kill-pid': { type: 'string', default: '' },
    'turn-url': { type: 'string', default: process.env.YJT_TURN_URL || '' },
    'turn-secret': { type: 'string', default: process.env.YJT_TURN_SECRET || '' },
    'decode-timeout-s': { type: 'string', default: '20' },
    'hold-s': { type: 'string', default: '0' },
    'deadline-s': { type: 'string', default: '90' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (opt.help) {
  const lines = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
  const end = lines.findIndex((l) => !l.startsWith('//'));
  process.stdout.write(lines.slice(0, end).map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(0);
}

const decodeTimeoutMs = Number(opt['decode-timeout-s']) * 1000;
const deadlineMs = Number(opt['deadline-s']) * 1000;

// ---------------------------------------------------------------- the page server

// Serves tests/browser/page/ on 127.0.0.1 (a secure context for
// getUserMedia); nothing else is fetched.
function servePage() {
  const files = {
    '/peer.html': ['text/html; charset=utf-8', 'peer.html'],
    '/peer.js': ['text/javascript; charset=utf-8', 'peer.js'],
  };
  const server = http.createServer((req, res) => {
    const f = files[new URL(req.url, 'http://127.0.0.1').pathname];
    if (!f) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': f[0], 'Cache-Control': 'no-store' });
    res.end(readFileSync(path.join(PAGE_DIR, f[1])));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// ---------------------------------------------------------------- the browser

const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor < 20) {
  process.stdout.write(`FAIL: Node.js ${process.versions.node} is too old: playwright-core needs 20 or newer\n`);
  process.exit(1);
}

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  process.stdout.write(`FAIL: playwright-core is not installed (run "npm ci" in ${HERE}): ${e.message}\n`);
  process.exit(1);
}

const pageErrors = [];
const usedPages = new Set();

async function launch() {
  const profile = mkdtempSync(path.join(tmpdir(), 'yjt-chromium-'));
  log(`launching ${opt.chromium} (profile ${profile})`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opt.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30000,
    viewport: { width: 640, height: 480 },
  });
  // Nothing but the local page server and yjtd (WebSocket, not routed).
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === '127.0.0.1' || host === 'localhost') return route.continue();
    log(`blocked request to ${route.request().url()}`);
    return route.abort('blockedbyclient');
  });
  return {
    context,
    async close() {
      try {
        await context.close();
      } catch (e) {
        log(`closing the browser: ${e.message}`);
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- a lossy path

// A UDP relay that stands for each of yjtd's candidates the pages are
// given: datagrams from a page go on to yjtd from a socket of the relay's
// (one per page address), and back; each is dropped with probability
// loss, both ways. The pages keep their own candidates, so yjtd only
// knows them by the relay's addresses and every packet takes this path.
class LossyPath {
  constructor(loss) {
    this.loss = loss;
    this.fronts = new Map();
    this.sockets = [];
    this.counts = { up: 0, down: 0, droppedUp: 0, droppedDown: 0 };
  }

  async socket() {
    const sock = dgram.createSocket('udp4');
    await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
    this.sockets.push(sock);
    return sock;
  }

  async front(host, port) {
    const key = `${host}:${port}`;
    if (this.fronts.has(key)) return this.fronts.get(key);
    const sock = await this.socket();
    const ups = new Map();
    sock.on('message', async (msg, from) => {
      const k = `${from.address}:${from.port}`;
      let up = ups.get(k);
      if (!up) {
        up = this.socket();
        ups.set(k, up);
        (await up).on('message', (back) => {
          if (Math.random() < this.loss) { this.counts.droppedDown++; return; }
          this.counts.down++;
          sock.send(back, from.port, from.address);
        });
      }
      if (Math.random() < this.loss) { this.counts.droppedUp++; return; }
      this.counts.up++;
      (await up).send(msg, port, host);
    });
    const p = sock.address().port;
    this.fronts.set(key, p);
    return p;
  }

  // yjtd's UDP candidates become the relay's; its TCP ones are dropped, so
  // that no media takes a path around the relay.
  async rewrite(sdp) {
    const lines = sdp.split('\r\n');
    for (let i = 0; i < lines.length; i++) {
      const f = lines[i].split(' ');
      if (lines[i].startsWith('a=candidate:') && f.length >= 8 && f[2].toUpperCase() === 'UDP') {
        f[5] = String(await this.front(f[4], Number(f[5])));
        f[4] = '127.0.0.1';
        lines[i] = f.join(' ');
      } else if (lines[i].startsWith('a=candidate:')) {
        lines[i] = null;
      }
    }
    return lines.filter((l) => l !== null).join('\r\n');
  }

  close() {
    for (const s of this.sockets) s.close();
  }
}

const lossPct = Number(opt['loss-pct']);
const lossy = lossPct > 0 ? new LossyPath(lossPct / 100) : null;

async function openPeer(context, pageUrl, name) {
  // The persistent context opens with one blank page: the first peer takes it.
  let page = context.pages().find((p) => p.url() === 'about:blank' && !usedPages.has(p));
  if (!page) page = await context.newPage();
  usedPages.add(page);
  page.on('pageerror', (e) => {
    pageErrors.push(`${name}: ${e.message}`);
    log(`${name} page error: ${e.message}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`${name} console.${m.type()}: ${m.text()}`);
  });
  if (lossy) {
    await page.exposeFunction('yjtRewriteSdp', (sdp) => lossy.rewrite(sdp));
    await page.addInitScript(() => { window.yjtKeepCandidates = true; });
  }
  if (opt['tcp-only']) await page.addInitScript(() => { window.yjtTcpOnly = true; });
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.peerReady === true, null, { timeout: 10000 });
  return page;
}

async function pageLog(page) {
  try {
    return await page.evaluate(() => window.peerTools.log.slice());
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- selftest

async function selftest(context, pageUrl, result) {
  const page = await openPeer(context, pageUrl, 'selftest');
  const lb = await page.evaluate((ms) => window.peerTools.loopbackCall(ms), decodeTimeoutMs);
  log(`loopback call decoded ${lb.stats.framesDecoded} frames ` +
    `(${lb.stats.frameWidth}x${lb.stats.frameHeight}) over ${JSON.stringify(lb.stats.pair.local)}`);
  result.loopback = lb;
  check(lb.stats.framesDecoded > 0, 'the loopback call decoded no video');
  check(lb.visibility === 'visible', `the page is ${lb.visibility}, not visible`);

  if (opt['turn-url']) {
    check(opt['turn-secret'], '--turn-url needs --turn-secret');
    const username = `${Math.floor(Date.now() / 1000) + 600}:selftest`;
    const good = [{ urls: [opt['turn-url']], username, credential: turnCredential(opt['turn-secret'], username) }];
    const bad = [{ urls: [opt['turn-url']], username, credential: turnCredential('not-' + opt['turn-secret'], username) }];
    result.turn_good = await page.evaluate((s) => window.peerTools.gather(s, { relay: true, timeoutMs: 10000 }), good);
    result.turn_bad = await page.evaluate((s) => window.peerTools.gather(s, { relay: true, timeoutMs: 10000 }), bad);
    log(`TURN with the right secret: ${JSON.stringify(result.turn_good.candidates)}`);
    log(`TURN with a wrong secret: ${JSON.stringify(result.turn_bad)}`);
    check(result.turn_good.candidates.some((c) => c.type === 'relay'),
      `no relay candidate from ${opt['turn-url']} with the right secret: ${JSON.stringify(result.turn_good)}`);
    check(!result.turn_bad.candidates.some((c) => c.type === 'relay'),
      `a relay candidate with a wrong secret: ${JSON.stringify(result.turn_bad)}`);
  }
}

// ---------------------------------------------------------------- the call through yjtd

function turnEntries(iceServers) {
  return (iceServers || []).filter((s) => {
    const urls = Array.isArray(s.urls) ? s.urls : [s.urls];
    return urls.some((u) => typeof u === 'string' && /^turns?:/i.test(u));
  });
}

function checkTurnEntries(where, iceServers) {
  check(Array.isArray(iceServers), `${where}: ice_servers is not a list: ${JSON.stringify(iceServers)}`);
  const turn = turnEntries(iceServers);
  check(turn.length > 0, `${where}: no TURN entry in ice_servers ${JSON.stringify(iceServers)}`);
  for (const t of turn) {
    const urls = Array.isArray(t.urls) ? t.urls : [t.urls];
    if (opt['turn-url']) {
      check(urls.includes(opt['turn-url']), `${where}: TURN urls ${JSON.stringify(urls)} lack ${opt['turn-url']}`);
    }
    check(typeof t.username === 'string' && /^\d+:.+$/.test(t.username),
      `${where}: TURN username ${JSON.stringify(t.username)} is not "expiry:userid"`);
    check(typeof t.credential === 'string' && t.credential.length > 0, `${where}: TURN entry without credential`);
    if (opt['turn-secret']) {
      check(t.credential === turnCredential(opt['turn-secret'], t.username),
        `${where}: TURN credential for ${t.username} is not base64 HMAC-SHA1(turn_secret, username)`);
    }
  }
  return turn[0];
}

async function withBrowser(fn) {
  const ctx = await launch();
  try {
    return await fn(ctx.context);
  } finally {
    await ctx.close();
  }
}

async function call(context, pageUrl, result) {
  check(opt.ws, '--ws (yjtd WebSocket URL) is required');
  check(opt.caller && opt.callee, '--caller and --callee are required');
  check(opt.password, '--password or $YJT_PASSWORD is required');
  const relay = opt.relay;

  const caller = await openPeer(context, pageUrl, 'caller');
  const callee = await openPeer(context, pageUrl, 'callee');
  const tag = randomBytes(3).toString('hex');

  await Promise.all([
    caller.evaluate((ws) => window.peer.connect(ws), opt.ws),
    callee.evaluate((ws) => window.peer.connect(ws), opt.failover || opt.ws),
  ]);
  const [callerUser, calleeUser] = await Promise.all([
    caller.evaluate(([u, p, d]) => window.peer.login(u, p, d), [opt.caller, opt.password, `web-caller-${tag}`]),
    callee.evaluate(([u, p, d]) => window.peer.login(u, p, d), [opt.callee, opt.password, `web-callee-${tag}`]),
  ]);
  check(calleeUser && calleeUser.id, `the callee's auth.login reply carries no user.id: ${JSON.stringify(calleeUser)}`);
  log(`logged in: caller ${opt.caller} (${callerUser.id}), callee ${opt.callee} (${calleeUser.id})`);
  result.caller_id = callerUser.id;
  result.callee_id = calleeUser.id;

  if (opt['failover-ringing']) {
    await failoverRinging(caller, callee, calleeUser, tag, result);
    return;
  }

  // The callee waits for call.incoming while the caller invites.
  const t0 = Date.now();
  const answered = callee.evaluate((o) => window.peer.answer(o), { relay, timeoutMs: 15000 });
  answered.catch(() => {});
  const invited = await caller.evaluate(([to, o]) => window.peer.call(to, o),
    [calleeUser.id, { relay, mode: opt.sfu ? 'sfu' : null }]);
  log(`call.invite ok: ${invited.call_id}`);
  const incoming = await answered;
  log(`callee accepted ${incoming.call_id} after ${Date.now() - t0} ms`);
  result.call_id = invited.call_id;
  result.invite_ice_servers = invited.ice_servers;
  result.ice_servers = invited.ice_servers_fetched;
  result.callee_ice_servers = incoming.ice_servers_fetched;
  result.incoming_ice_servers = incoming.ice_servers === undefined ? null : incoming.ice_servers;
  result.incoming_from = incoming.from;
  result.call_mode = { invite: invited.mode, incoming: incoming.mode };
  if (opt.sfu) {
    check(invited.mode === 'sfu' && incoming.mode === 'sfu',
      `the call is not through the SFU: ${JSON.stringify(result.call_mode)}`);
    // The callee's offer is the server's: its own ICE credentials and
    // candidates, setup:actpass.
    check(/a=setup:actpass/.test(incoming.offer) && /a=candidate:/.test(incoming.offer),
      `call.incoming's offer is not the server's: ${incoming.offer.slice(0, 400)}`);
    result.server_candidates = (incoming.offer.match(/^a=candidate:.*$/gm) || []).map((l) => l.slice(2));
  }

  check(incoming.call_id === invited.call_id,
    `call.incoming call_id ${incoming.call_id} differs from the invite's ${invited.call_id}`);
  check(incoming.from && incoming.from.id === callerUser.id,
    `call.incoming from ${JSON.stringify(incoming.from)}, expected the caller ${callerUser.id}`);
  check(Array.isArray(invited.ice_servers), `call.invite reply without ice_servers: ${JSON.stringify(invited)}`);

  let turnEntry = null;
  if (relay) {
    turnEntry = checkTurnEntries('ice.servers (caller)', invited.ice_servers_fetched);
    checkTurnEntries('ice.servers (callee)', incoming.ice_servers_fetched);
    checkTurnEntries('call.invite reply', invited.ice_servers);
    if (incoming.ice_servers !== undefined) checkTurnEntries('call.incoming', incoming.ice_servers);
    check(turnEntry.username.endsWith(`:${callerUser.id}`),
      `the caller's TURN username ${turnEntry.username} does not name the caller ${callerUser.id}`);
  }

  await caller.evaluate(() => window.peer.sig.waitEvent('call.accepted', 10000));
  const ringing = await caller.evaluate(() => window.peer.sig.events.some((e) => e.type === 'call.ringing'));
  check(ringing, 'the caller got no call.ringing');

  // Both sides must decode video.
  const [cs, ks] = await Promise.all([
    caller.evaluate((ms) => window.peer.waitDecoded(ms), decodeTimeoutMs),
    callee.evaluate((ms) => window.peer.waitDecoded(ms), decodeTimeoutMs),
  ]);
  result.time_to_video_ms = Date.now() - t0;
  result.stats = { caller: cs, callee: ks };
  log(`video decoded after ${result.time_to_video_ms} ms: caller ${cs.framesDecoded} frames ` +
    `${cs.frameWidth}x${cs.frameHeight} via ${JSON.stringify(cs.pair.local)} -> ${JSON.stringify(cs.pair.remote)}; ` +
    `callee ${ks.framesDecoded} frames via ${JSON.stringify(ks.pair.local)} -> ${JSON.stringify(ks.pair.remote)}`);

  for (const [who, s] of [['caller', cs], ['callee', ks]]) {
    check(s.framesDecoded > 0, `${who} decoded no video`);
    if (relay) {
      check(s.pair.local && s.pair.local.candidateType === 'relay',
        `${who}: the selected pair's local candidate is ${JSON.stringify(s.pair.local)}, not relay`);
      // Through the SFU the far end is the server's own host candidate.
      check(opt.sfu || (s.pair.remote && s.pair.remote.candidateType === 'relay'),
        `${who}: the selected pair's remote candidate is ${JSON.stringify(s.pair.remote)}, not relay`);
    } else {
      check(s.pair.local && s.pair.local.candidateType !== 'relay',
        `${who}: a direct call went through a relay: ${JSON.stringify(s.pair)}`);
    }
    if (opt['tcp-only']) {
      check(s.pair.local.protocol === 'tcp' && s.pair.remote && s.pair.remote.protocol === 'tcp',
        `${who}: the selected pair is not TCP: ${JSON.stringify(s.pair)}`);
    }
  }

  // --hold-s: the call goes on that long, and the video keeps decoding.
  const holdMs = Number(opt['hold-s']) * 1000;
  if (holdMs > 0) {
    await new Promise((r) => setTimeout(r, holdMs));
    const [ca, ka] = await Promise.all([
      caller.evaluate(() => window.peer.stats()),
      callee.evaluate(() => window.peer.stats()),
    ]);
    result.stats_after_hold = { caller: ca, callee: ka, hold_ms: holdMs };
    log(`after ${holdMs} ms more: caller ${ca.framesDecoded} frames, callee ${ka.framesDecoded} frames`);
  }

  if (opt.failover) {
    await failover(caller, callee, tag, result);
    return;
  }

  // The caller restarts ICE (new credentials, new checks) through yjtd;
  // the video goes on both ways.
  if (opt['ice-restart']) {
    check(opt.sfu, '--ice-restart needs --sfu');
    const [c0, k0] = await Promise.all([
      caller.evaluate(() => window.peer.stats()),
      callee.evaluate(() => window.peer.stats()),
    ]);
    const r0 = Date.now();
    const restarted = await caller.evaluate(() => window.peer.restartIce());
    log(`ICE restart: ufrag ${restarted.before} -> ${restarted.after}, server's now ${restarted.remote_after}`);
    check(restarted.before !== restarted.after, 'the caller\'s ICE credentials did not change');
    await new Promise((r) => setTimeout(r, 3000));
    const [c1, k1] = await Promise.all([
      caller.evaluate(() => window.peer.stats()),
      callee.evaluate(() => window.peer.stats()),
    ]);
    result.ice_restart = { ...restarted, ms: Date.now() - r0,
      caller_frames: [c0.framesDecoded, c1.framesDecoded], callee_frames: [k0.framesDecoded, k1.framesDecoded] };
    log(`after the restart: caller ${c0.framesDecoded} -> ${c1.framesDecoded} frames, ` +
      `callee ${k0.framesDecoded} -> ${k1.framesDecoded}`);
    check(c1.framesDecoded - c0.framesDecoded >= 15 && k1.framesDecoded - k0.framesDecoded >= 15,
      `video stalled after the ICE restart: ${JSON.stringify(result.ice_restart)}`);
  }

  // A viewer joins the answered call, decodes both parties, and leaves.
  if (opt.viewer) {
    check(opt.sfu, '--viewer needs --sfu');
    const viewer = await openPeer(context, pageUrl, 'viewer');
    await viewer.evaluate((ws) => window.peer.connect(ws), opt.ws);
    const viewerUser = await viewer.evaluate(([u, p, d]) => window.peer.login(u, p, d),
      [opt.viewer, opt.password, `web-viewer-${tag}`]);
    const j0 = Date.now();
    const joined = await viewer.evaluate((id) => window.peer.join(id, { role: 'viewer' }), invited.call_id);
    const first = await viewer.evaluate((ms) => window.peer.waitStreams(1, ms), decodeTimeoutMs);
    const firstMs = Date.now() - j0;
    const both = await viewer.evaluate((ms) => window.peer.waitStreams(2, ms), decodeTimeoutMs);
    const bothMs = Date.now() - j0;
    result.viewer = { id: viewerUser.id, participants: joined.participants, first_video_ms: firstMs,
      both_videos_ms: bothMs, stats: both };
    log(`viewer ${opt.viewer} decoded its first stream ${firstMs} ms after call.join, both after ${bothMs} ms ` +
      `(${both.framesDecoded} frames)`);
    check(first.framesDecoded > 0 && both.videoStreamsDecoding >= 2, 'the viewer did not decode both parties');
    check(/a=sendonly/.test(joined.answer) && !/a=sendrecv/.test(joined.answer),
      'the answer to a viewer must only send');
    for (const [who, page] of [['caller', caller], ['callee', callee]]) {
      const ev = await page.evaluate(() => window.peer.sig.waitEvent('call.participant_joined', 5000));
      check(ev.user && ev.user.id === viewerUser.id && ev.role === 'viewer',
        `${who} got call.participant_joined ${JSON.stringify(ev)}`);
    }
    await viewer.evaluate(() => window.peer.leave());
    const left = await caller.evaluate(() => window.peer.sig.waitEvent('call.participant_left', 5000));
    check(left.user_id === viewerUser.id && left.reason === 'left', `call.participant_left ${JSON.stringify(left)}`);
    result.viewer.left = left;
    await viewer.evaluate(() => window.peer.close());
  }

  // A speaker joins: yjtd offers the parties a section for it.
  if (opt.speaker) {
    check(opt.sfu, '--speaker needs --sfu');
    const speaker = await openPeer(context, pageUrl, 'speaker');
    await speaker.evaluate((ws) => window.peer.connect(ws), opt.ws);
    const su = await speaker.evaluate(([u, p, d]) => window.peer.login(u, p, d),
      [opt.speaker, opt.password, `web-speaker-${tag}`]);
    const j0 = Date.now();
    const joined = await speaker.evaluate((id) => window.peer.join(id, { role: 'speaker' }), invited.call_id);
    check(/a=sendrecv/.test(joined.answer), 'the answer to a speaker must take its media');
    const heard = await speaker.evaluate((ms) => window.peer.waitStreams(2, ms), decodeTimeoutMs);
    const [cs2, ks2] = await Promise.all([
      caller.evaluate((ms) => window.peer.waitStreams(2, ms), decodeTimeoutMs),
      callee.evaluate((ms) => window.peer.waitStreams(2, ms), decodeTimeoutMs),
    ]);
    const counts = await Promise.all([caller, callee].map((p) => p.evaluate(() => window.peer.summary().counts)));
    result.speaker = { id: su.id, ms: Date.now() - j0, speaker_streams: heard.videoStreamsDecoding,
      caller_streams: cs2.videoStreamsDecoding, callee_streams: ks2.videoStreamsDecoding,
      server_offers: counts.map((c) => c.serverOffers || 0) };
    log(`speaker ${opt.speaker}: decodes ${heard.videoStreamsDecoding} streams; the parties decode ` +
      `${cs2.videoStreamsDecoding} and ${ks2.videoStreamsDecoding} after ${result.speaker.ms} ms`);
    check(counts.every((c) => c.serverOffers === 1), `the parties answered ${JSON.stringify(counts)} server offers`);
    await speaker.evaluate(() => window.peer.leave());
    await speaker.evaluate(() => window.peer.close());
  }

  // Through the SFU each side's selected pair ends at yjtd: the remote
  // address and port are among the candidates yjtd wrote in its SDP.
  if (opt.sfu) {
    const answer = await caller.evaluate(
      () => (window.peer.sig.events.find((e) => e.type === 'call.accepted') || {}).sdp || '');
    check(/a=setup:passive/.test(answer) && /a=candidate:/.test(answer),
      `call.accepted's answer is not the server's: ${answer.slice(0, 400)}`);
    const cands = {
      caller: (answer.match(/^a=candidate:.*$/gm) || []).map((l) => l.slice(2)),
      callee: result.server_candidates,
    };
    result.server_candidates = cands;
    for (const [who, s] of [['caller', cs], ['callee', ks]]) {
      const r = s.pair.remote || {};
      const addr = r.address || r.ip;
      if (lossy) { // through the relay standing for yjtd's candidates
        check([...lossy.fronts.values()].includes(r.port),
          `${who}: the selected pair's remote end ${JSON.stringify(r)} is not the lossy path`);
        continue;
      }
      check(cands[who].some((c) => c.includes(` ${addr} ${r.port} `)),
        `${who}: the selected pair's remote end ${JSON.stringify(r)} is not one of yjtd's ` +
        `candidates ${JSON.stringify(cands[who])}`);
    }
  }

  // Trickle ICE went through yjtd: each side got the other's candidates
  // as call.candidate events (the SDPs carried none). Through the SFU the
  // server's candidates are in its SDP; the pages' went to yjtd.
  const [csum0, ksum0] = await Promise.all([
    caller.evaluate(() => window.peer.summary()),
    callee.evaluate(() => window.peer.summary()),
  ]);
  for (const [who, s] of [['caller', csum0], ['callee', ksum0]]) {
    if (!opt.sfu) {
      check(s.counts.receivedCandidates > 0, `${who} received no call.candidate: ${JSON.stringify(s.counts)}`);
    }
    if (!lossy) check(s.counts.sentCandidates > 0, `${who} sent no candidate: ${JSON.stringify(s.counts)}`);
    if (relay && !opt.sfu) {
      check(s.counts.receivedTypes.relay > 0, `${who} received no relay candidate: ${JSON.stringify(s.counts)}`);
    }
  }

  // Hang up: both parties get call.ended.
  await caller.evaluate(() => window.peer.hangup());
  const [ce, ke] = await Promise.all([
    caller.evaluate(() => window.peer.waitEnded(5000)),
    callee.evaluate(() => window.peer.waitEnded(5000)),
  ]);
  result.ended = { caller: ce, callee: ke };
  log(`call.ended: caller ${ce.reason}, callee ${ke.reason}`);
  check(ce.reason === 'hangup' && ke.reason === 'hangup',
    `call.ended reasons ${ce.reason} / ${ke.reason}, expected hangup`);

  // Relay only: a TURN credential made with a wrong secret gets no
  // allocation, the one yjtd issued does (same page, same server).
  if (relay) {
    const urls = Array.isArray(turnEntry.urls) ? turnEntry.urls : [turnEntry.urls];
    const goodServers = [{ urls, username: turnEntry.username, credential: turnEntry.credential }];
    const badServers = [{ urls, username: turnEntry.username,
      credential: turnCredential(`wrong-${randomBytes(8).toString('hex')}`, turnEntry.username) }];
    const [good, bad] = [
      await caller.evaluate((s) => window.peerTools.gather(s, { relay: true, timeoutMs: 10000 }), goodServers),
      await caller.evaluate((s) => window.peerTools.gather(s, { relay: true, timeoutMs: 10000 }), badServers),
    ];
    result.turn_good = good;
    result.turn_bad = bad;
    log(`relay gathering with yjtd's credential: ${JSON.stringify(good.candidates)}`);
    log(`relay gathering with a wrong secret: ${JSON.stringify(bad)}`);
    check(good.candidates.some((c) => c.type === 'relay'),
      `no relay candidate with the credential yjtd issued: ${JSON.stringify(good)}`);
    check(!bad.candidates.some((c) => c.type === 'relay'),
      `a relay candidate with a credential made from a wrong secret: ${JSON.stringify(bad)}`);
  }

  const [csum, ksum] = await Promise.all([
    caller.evaluate(() => { window.peer.close(); return window.peer.summary(); }),
    callee.evaluate(() => { window.peer.close(); return window.peer.summary(); }),
  ]);
  result.caller = csum;
  result.callee = ksum;
  check(!csum.errors.length && !ksum.errors.length,
    `errors in the pages: caller ${JSON.stringify(csum.errors)} callee ${JSON.stringify(ksum.errors)}`);
}

// Frames decoded over the next windowMs, or fewer when the video stalls
// (sums over every inbound stream: a stream whose server died stops).
async function framesOver(page, windowMs) {
  const a = await page.evaluate(() => window.peer.stats());
  await new Promise((r) => setTimeout(r, windowMs));
  const b = await page.evaluate(() => window.peer.stats());
  return { frames: b.framesDecoded - a.framesDecoded, stats: b };
}

// Waits until page decodes at least minFrames in one second, or fails.
async function decodesAgain(page, who, minFrames, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    last = await framesOver(page, 1000);
    if (last.frames >= minFrames) return last;
  }
  throw new Failure(`${who}: video did not come back within ${timeoutMs} ms (last second: ` +
    `${last && last.frames} frames; ${JSON.stringify(last && last.stats)})`);
}

// --failover: the caller's node (which holds the call and its media) is
// killed; the call goes on through the callee's node.
async function failover(caller, callee, tag, result) {
  check(opt.sfu, '--failover needs --sfu');
  check(opt['kill-pid'], '--failover needs --kill-pid');
  const before = await Promise.all([framesOver(caller, 1000), framesOver(callee, 1000)]);
  const k0 = Date.now();
  process.kill(Number(opt['kill-pid']), 'SIGKILL');
  log(`killed the caller's node (pid ${opt['kill-pid']})`);
  // The media stop on both sides.
  const stalled = await Promise.all([framesOver(caller, 1500), framesOver(callee, 1500)]);
  // The callee (its server lives) is told, and restarts ICE there.
  const lost = await callee.evaluate(() => window.peer.sig.waitEvent('call.media_lost', 20000));
  const toldMs = Date.now() - k0;
  log(`callee heard call.media_lost ${toldMs} ms after the kill`);
  const calleeRestart = await callee.evaluate(() => window.peer.restartIce());
  // The caller's connection dropped: it reconnects to the callee's node.
  const resumed = await caller.evaluate(([url, u, p, d]) => window.peer.reconnect(url, u, p, d),
    [opt.failover, opt.caller, opt.password, `web-caller-${tag}`]);
  check(resumed.state === 'active' && resumed.role === 'caller',
    `call.resume on the surviving node: ${JSON.stringify(resumed)}`);
  await caller.evaluate(() => window.peer.sig.waitEvent('call.media_lost', 5000));
  const callerRestart = await caller.evaluate(() => window.peer.restartIce());
  const [ca, ka] = await Promise.all([
    decodesAgain(caller, 'caller', 10, 20000),
    decodesAgain(callee, 'callee', 10, 20000),
  ]);
  result.failover = {
    frames_per_s_before: before.map((x) => x.frames),
    frames_in_1500_ms_after_kill: stalled.map((x) => x.frames),
    media_lost_after_ms: toldMs,
    video_back_after_ms: Date.now() - k0,
    frames_per_s_after: [ca.frames, ka.frames],
    resumed,
    caller_restart: callerRestart,
    callee_restart: calleeRestart,
    pairs_after: { caller: ca.stats.pair, callee: ka.stats.pair },
    lost_event: lost,
  };
  log(`video back on both sides ${result.failover.video_back_after_ms} ms after the kill: ` +
    `${ca.frames} and ${ka.frames} frames a second`);
  // Each side's media now end at the surviving node: the selected pair's
  // remote end is one of the candidates in that node's answer.
  for (const [who, s, r] of [['caller', ca.stats, callerRestart], ['callee', ka.stats, calleeRestart]]) {
    const rem = s.pair && s.pair.remote || {};
    check(r.remote_candidates.some((c) => c.includes(` ${rem.address || rem.ip} ${rem.port} `)),
      `${who}: the selected pair's remote end ${JSON.stringify(rem)} is not one of the surviving ` +
      `node's candidates ${JSON.stringify(r.remote_candidates)}`);
  }
  check(callerRestart.remote_fingerprint === calleeRestart.remote_fingerprint,
    'the two parties were answered with different certificates');
  const firstAnswer = await caller.evaluate(
    () => (window.peer.sig.events.find((e) => e.type === 'call.accepted') || {}).sdp || '');
  const firstFp = (firstAnswer.match(/^a=fingerprint:(.*)$/m) || [])[1];
  result.failover.fingerprints = [firstFp, callerRestart.remote_fingerprint];
  check(firstFp && firstFp !== callerRestart.remote_fingerprint,
    'the media did not move to another server (same certificate before and after)');
  await caller.evaluate(() => window.peer.hangup());
  const [ce, ke] = await Promise.all([
    caller.evaluate(() => window.peer.waitEnded(5000)),
    callee.evaluate(() => window.peer.waitEnded(5000)),
  ]);
  result.ended = { caller: ce, callee: ke };
  check(ce.reason === 'hangup' && ke.reason === 'hangup',
    `call.ended reasons ${ce.reason} / ${ke.reason}, expected hangup`);
  const [csum, ksum] = await Promise.all([
    caller.evaluate(() => { window.peer.close(); return window.peer.summary(); }),
    callee.evaluate(() => { window.peer.close(); return window.peer.summary(); }),
  ]);
  result.caller = csum;
  result.callee = ksum;
}

// --failover-ringing: the caller's node dies while the call rings; the
// surviving node rings the callee again with its own offer and answers
// the caller's offer anew (the caller's candidates died with the old node).
async function failoverRinging(caller, callee, calleeUser, tag, result) {
  check(opt.sfu && opt.failover && opt['kill-pid'], '--failover-ringing needs --sfu --failover --kill-pid');
  const invited = await caller.evaluate(([to, o]) => window.peer.call(to, o), [calleeUser.id, { mode: 'sfu' }]);
  result.call_id = invited.call_id;
  const first = await callee.evaluate(() => window.peer.sig.waitEvent('call.incoming', 10000));
  await new Promise((r) => setTimeout(r, 500)); // the caller's candidates reach its node
  const k0 = Date.now();
  process.kill(Number(opt['kill-pid']), 'SIGKILL');
  log(`killed the caller's node (pid ${opt['kill-pid']}) while the call rings`);
  const answered = await callee.evaluate(() => window.peer.answer({ timeoutMs: 20000, nth: 2 }));
  const rungAgainMs = Date.now() - k0;
  const fp = (sdp) => (sdp.match(/^a=fingerprint:(.*)$/m) || [])[1];
  log(`callee rung again ${rungAgainMs} ms after the kill, and answered`);
  const resumed = await caller.evaluate(([url, u, p, d]) => window.peer.reconnect(url, u, p, d),
    [opt.failover, opt.caller, opt.password, `web-caller-${tag}`]);
  if (resumed.state !== 'active') {
    await caller.evaluate(() => window.peer.sig.waitEvent('call.accepted', 10000));
  }
  const [ca, ka] = await Promise.all([
    decodesAgain(caller, 'caller', 10, 20000),
    decodesAgain(callee, 'callee', 10, 20000),
  ]);
  result.failover_ringing = {
    rung_again_after_ms: rungAgainMs,
    video_after_ms: Date.now() - k0,
    frames_per_s: [ca.frames, ka.frames],
    fingerprints: [fp(first.sdp), fp(answered.offer)],
    resumed,
    pairs: { caller: ca.stats.pair, callee: ka.stats.pair },
  };
  log(`video on both sides ${result.failover_ringing.video_after_ms} ms after the kill: ` +
    `${ca.frames} and ${ka.frames} frames a second`);
  check(fp(first.sdp) !== fp(answered.offer), 'the second call.incoming carries the dead node\'s offer');
  await caller.evaluate(() => window.peer.hangup());
  const [ce, ke] = await Promise.all([
    caller.evaluate(() => window.peer.waitEnded(5000)),
    callee.evaluate(() => window.peer.waitEnded(5000)),
  ]);
  result.ended = { caller: ce, callee: ke };
  check(ce.reason === 'hangup' && ke.reason === 'hangup', `call.ended ${ce.reason} / ${ke.reason}`);
  await caller.evaluate(() => window.peer.close());
  await callee.evaluate(() => window.peer.close());
}

// ---------------------------------------------------------------- werift as the caller

// A yjt WebSocket client in Node (for werift's side).
class NodeSig {
  static async open(url, WebSocket) {
    const s = new NodeSig();
    s.ws = new WebSocket(url, 'yjt.v1');
    s.n = 0;
    s.events = [];
    s.replies = new Map();
    s.waiters = [];
    s.ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.re !== undefined && s.replies.has(m.re)) {
        s.replies.get(m.re)(m);
        s.replies.delete(m.re);
      } else if (m.type) {
        s.events.push(m);
        for (const w of s.waiters.splice(0)) w();
      }
    });
    await new Promise((resolve, reject) => { s.ws.once('open', resolve); s.ws.once('error', reject); });
    return s;
  }

  ok(type, fields = {}) {
    const id = ++this.n;
    this.ws.send(JSON.stringify({ id, type, ...fields }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${type}: no reply`)), 10000);
      this.replies.set(id, (m) => {
        clearTimeout(timer);
        if (m.ok) resolve(m); else reject(new Error(`${type} failed: ${JSON.stringify(m).slice(0, 300)}`));
      });
    });
  }

  async waitEvent(type, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => e.type === type);
      if (i >= 0) return this.events.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Failure(`werift side: no ${type} within ${timeoutMs} ms`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 200); });
    }
  }
}

// The frames of an IVF file.
function ivfFrames(path) {
  const b = readFileSync(path);
  check(b.toString('latin1', 0, 4) === 'DKIF', `${path} is not an IVF file`);
  const frames = [];
  for (let off = b.readUInt16LE(6); off + 12 <= b.length;) {
    const size = b.readUInt32LE(off);
    frames.push(b.subarray(off + 12, off + 12 + size));
    off += 12 + size;
  }
  return frames;
}

async function weriftCall(context, pageUrl, result) {
  check(opt.ivf, '--mode werift needs --ivf');
  const { RTCPeerConnection, MediaStreamTrack, RtpHeader, RtpPacket } = await import('werift');
  const { WebSocket } = await import('ws');
  const frames = ivfFrames(opt.ivf);
  const tag = randomBytes(3).toString('hex');

  const callee = await openPeer(context, pageUrl, 'callee');
  await callee.evaluate((ws) => window.peer.connect(ws), opt.ws);
  const calleeUser = await callee.evaluate(([u, p, d]) => window.peer.login(u, p, d),
    [opt.callee, opt.password, `web-callee-${tag}`]);
  const sig = await NodeSig.open(opt.ws, WebSocket);
  await sig.ok('auth.login', { username: opt.caller, password: opt.password,
    device_id: `werift-${tag}`, platform: 'cli' });

  // Loopback only: no STUN server (werift's default is a public one), no
  // IPv6, and only pairs from 127.0.0.1 (werift also lists the machine's
  // other addresses, which are left out of its SDP).
  const pc = new RTCPeerConnection({
    iceServers: [],
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceFilterCandidatePair: (pair) => pair.localCandidate.host === '127.0.0.1',
  });
  const track = new MediaStreamTrack({ kind: 'video' });
  const tr = pc.addTransceiver(track, { direction: 'sendrecv' });
  const got = { packets: 0, keyframes: 0 };
  tr.onTrack.subscribe((t) => t.onReceiveRtp.subscribe((rtp) => {
    got.packets++;
    const p = rtp.payload;
    // VP8: descriptor (S, partition 0), then the frame tag's P bit 0 = key.
    let off = 1;
    if (p[0] & 0x80) off += 1 + ((p[1] & 0x80) ? ((p[2] & 0x80) ? 2 : 1) : 0) + ((p[1] & 0x40) ? 1 : 0) + ((p[1] & 0x30) ? 1 : 0);
    if ((p[0] & 0x10) && (p[0] & 0x07) === 0 && off < p.length && !(p[off] & 1)) got.keyframes++;
  }));
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((st) => st === 'complete');
  const answered = callee.evaluate((o) => window.peer.answer(o), { relay: false, timeoutMs: 15000 });
  answered.catch(() => {});
  const offer = pc.localDescription.sdp.split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') || / 127\.0\.0\.1 /.test(l)).join('\r\n');
  check(/a=candidate:.* 127\.0\.0\.1 /.test(offer), `werift gathered no loopback candidate: ${offer}`);
  const inv = await sig.ok('call.invite', { to: { user: calleeUser.id }, mode: 'sfu',
    media: { audio: false, video: true }, sdp: offer });
  result.call_id = inv.call_id;
  await answered;
  const acc = await sig.waitEvent('call.accepted', 10000);
  await pc.setRemoteDescription({ type: 'answer', sdp: acc.sdp });
  log(`werift called ${calleeUser.id} through the SFU: call ${inv.call_id}`);

  // Send the IVF's frames at 30 fps, each cut into RTP packets (RFC 7741).
  let seq = 0, ts = 0, i = 0;
  const pacer = setInterval(() => {
    const f = frames[i++ % frames.length];
    ts += 3000;
    for (let off = 0, first = true; off < f.length; first = false) {
      const chunk = f.subarray(off, off + 1100);
      off += chunk.length;
      const header = new RtpHeader({ payloadType: 96, sequenceNumber: seq++ & 0xffff, timestamp: ts >>> 0,
        marker: off >= f.length });
      track.writeRtp(new RtpPacket(header, Buffer.concat([Buffer.from([first ? 0x10 : 0x00]), chunk])));
    }
  }, 33);
  try {
    const ks = await callee.evaluate((ms) => window.peer.waitDecoded(ms), decodeTimeoutMs);
    const deadline = Date.now() + 10000;
    while ((got.packets < 100 || !got.keyframes) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    result.werift = { sent_frames: i, received_packets: got.packets, received_keyframes: got.keyframes };
    result.callee_stats = ks;
    log(`the page decoded ${ks.framesDecoded} frames of werift's video (${ks.frameWidth}x${ks.frameHeight}); ` +
      `werift received ${got.packets} packets, ${got.keyframes} key frames`);
    check(ks.framesDecoded > 0, 'the page decoded none of werift\'s video');
    check(got.packets >= 100 && got.keyframes > 0, `werift received too little: ${JSON.stringify(got)}`);
  } finally {
    clearInterval(pacer);
  }
  await sig.ok('call.hangup', { call_id: inv.call_id });
  const ended = await callee.evaluate(() => window.peer.waitEnded(5000));
  check(ended.reason === 'hangup', `call.ended ${JSON.stringify(ended)}`);
  await pc.close();
  sig.ws.close();
  await callee.evaluate(() => window.peer.close());
}

// ---------------------------------------------------------------- main

const result = { mode: opt.mode, relay: opt.relay, sfu: opt.sfu, loss_pct: lossPct };
let ok = false;
let failure = null;
const watchdog = setTimeout(() => {
  process.stdout.write(`FAIL: the whole run took over ${deadlineMs / 1000} s\n`);
  process.exit(1);
}, deadlineMs);

const pageServer = await servePage();
const pageUrl = `http://127.0.0.1:${pageServer.address().port}/peer.html`;
try {
  await withBrowser(async (context) => {
    try {
      if (opt.mode === 'selftest') await selftest(context, pageUrl, result);
      else if (opt.mode === 'call') await call(context, pageUrl, result);
      else if (opt.mode === 'werift') await weriftCall(context, pageUrl, result);
      else throw new Failure(`unknown --mode ${opt.mode}`);
      check(!pageErrors.length, `uncaught errors in the pages: ${pageErrors.join('; ')}`);
      ok = true;
    } finally {
      if (!ok) {
        for (const p of context.pages()) {
          const lines = await pageLog(p);
          for (const l of lines.slice(-60)) log(`  page ${p.url().split('/').pop()}: ${l}`);
        }
      }
    }
  });
} catch (e) {
  failure = e instanceof Failure ? e.message : (e && e.stack) || String(e);
}
pageServer.close();
if (lossy) {
  result.lossy_path = lossy.counts;
  lossy.close();
}
clearTimeout(watchdog);
result.elapsed_ms = Date.now() - started;
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
if (!ok) {
  process.stdout.write(`FAIL: ${failure || 'unknown failure'}\n`);
  process.exit(1);
}
log('all checks passed');
process.exit(0);
