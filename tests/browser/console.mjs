#!/usr/bin/env node
// End-to-end test of the duty console (web/, served by yjtd at /) in
// headless Chromium, with two browser contexts: a regulator at a desk-sized
// window and an enterprise principal at a phone-sized one.
//
//   node console.mjs --url http://127.0.0.1:8080 --gov gina --corp alice \
//       --trs tom --sensor LT-1 --sensor2 PT-2 --shots DIR
//
// What it checks, as a user would see it on screen:
//   1. both log in; the regulator sees the enterprise's principal online;
//   2. the regulator starts a patrol of key enterprises and calls the
//      enterprise from the queue; the principal's screen rings, they
//      answer; both screens play the other's (fake) camera;
//      the regulator's WebSocket drops mid-call; the console reconnects,
//      resumes the call and the video goes on;
//   3. the regulator hangs up, notes the result, finishes the patrol, and
//      sees the report (reached) and today's coverage (patrolled);
//   4. a reading past the threshold posted to the sensor API shows on the
//      regulator's live alarm list within a second and on the plant's; the
//      plant acknowledges and the regulator sees it acknowledged;
//   5. yjtd restarts while both consoles are cut off from the network
//      (their WebSocket constructor made to fail, as when a desk loses its
//      link): both show offline; meanwhile a notice and an alarm are made;
//      when the network is back both consoles reconnect by themselves and
//      show everything they missed;
//   6. the plant confirms reading; the regulator sees the receipt; the
//      plant files today's commitment and leaves the regulator's missing
//      list; English works; the carrier sees "not available yet".
//
// The restart is done by whoever started this script: it writes
// "CONTROL restart" on stdout and waits for a line on stdin.
// Screenshots of each screen go to --shots. stdout ends with "RESULT
// <json>" and, on failure, "FAIL: <why>"; the exit status is 0 when every
// check passed.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string', default: '' },
    gov: { type: 'string', default: 'gina' },
    corp: { type: 'string', default: 'alice' },
    trs: { type: 'string', default: '' },
    enterprise: { type: 'string', default: 'E1' },
    sensor: { type: 'string', default: '' },
    sensor2: { type: 'string', default: '' },
    password: { type: 'string', default: process.env.YJT_PASSWORD || '' },
    'api-key': { type: 'string', default: process.env.YJT_API_KEY || '' },
    shots: { type: 'string', default: '' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    'deadline-s': { type: 'string', default: '180' },
  },
  strict: true,
});

const started = Date.now();
const log = (m) => process.stderr.write(`[console.mjs ${((Date.now() - started) / 1000).toFixed(2)}s] ${m}\n`);
class Failure extends Error {}
const check = (cond, msg) => {
  if (!cond) throw new Failure(msg);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const CHROMIUM_ARGS = [
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
  '--autoplay-policy=no-user-gesture-required',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

// Only loopback and relay candidates are signalled, so no ICE check leaves
// the machine (the console reads this hook at start).
const LOOPBACK_ONLY = `window.yjtCandidateFilter = (line) => {
  const f = String(line).split(' ');
  const typ = f.indexOf('typ');
  const type = typ >= 0 ? f[typ + 1] : '';
  const a = f[4] || '';
  return type === 'relay' || a.startsWith('127.') || a === '::1';
};`;

const result = { shots: [], timings: {} };
const pageErrors = [];
const consoleErrors = []; // a failed fetch, a refused candidate, …: none expected

// ---------------------------------------------------------------- helpers

const stdinLines = readline.createInterface({ input: process.stdin });
const stdinQueue = [];
let stdinWaiter = null;
stdinLines.on('line', (l) => {
  if (stdinWaiter) {
    const w = stdinWaiter;
    stdinWaiter = null;
    w(l);
  } else stdinQueue.push(l);
});

/** Asks the parent to do something (restart yjtd) and waits for its answer. */
function control(what) {
  process.stdout.write(`CONTROL ${what}\n`);
  return new Promise((resolve) => {
    if (stdinQueue.length) resolve(stdinQueue.shift());
    else stdinWaiter = resolve;
  });
}

async function shot(page, name) {
  if (!opt.shots) return;
  const file = path.join(opt.shots, `${name}.png`);
  await page.screenshot({ path: file });
  result.shots.push(file);
  log(`screenshot ${file}`);
}

async function rest(method, p, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(opt.url + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await r.json().catch(() => null);
  return { status: r.status, json };
}

async function postReading(sensor, value) {
  const r = await rest('POST', '/api/v1/readings', {
    headers: { 'X-Api-Key': opt['api-key'] },
    body: { readings: [{ sensor, value, ts: Date.now() }] },
  });
  check(r.status === 200 && r.json.accepted === 1, `reading not accepted: ${JSON.stringify(r)}`);
}

async function login(page, username) {
  await page.goto(opt.url + '/');
  await page.locator('[data-test=username]').fill(username);
  await page.locator('[data-test=password]').fill(opt.password);
  await page.locator('[data-test=login]').click();
  await page.locator('nav.tabs').waitFor({ timeout: 10000 });
  await page.locator('[data-test=conn][data-state=online]').waitFor({ timeout: 10000 });
}

const tab = (page, id) => page.locator(`nav.tabs [data-tab=${id}]`).click();

/** Frames the page's call has decoded from the other side (0 if none). */
function framesDecoded(page) {
  return page.evaluate(async () => {
    const call = [...window.yjt.calls.calls.values()][0];
    if (!call || !call.pc) return 0;
    let n = 0;
    (await call.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.framesDecoded || 0;
    });
    return n;
  });
}

/** True once the remote <video> of the call view plays a picture. */
async function remoteVideoPlays(page) {
  await page.waitForFunction(() => {
    const v = document.querySelector('[data-test=remote-video]');
    return v && v.videoWidth > 0 && v.readyState >= 2 && v.currentTime > 0;
  }, null, { timeout: 20000 });
  return page.evaluate(() => {
    const v = document.querySelector('[data-test=remote-video]');
    return { width: v.videoWidth, height: v.videoHeight };
  });
}

/** Cuts the console off from the network (every new WebSocket fails) or restores it. */
function setNetwork(page, up) {
  return page.evaluate((on) => {
    const c = window.yjt;
    if (!c.realWS) c.realWS = c.WS;
    c.WS = on ? c.realWS : function down() {
      throw new Error('network down (test)');
    };
    if (on) c.retryNow();
  }, up);
}

// ---------------------------------------------------------------- the run

async function run(browser) {
  const govCtx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'zh-CN' });
  const corpCtx = await browser.newContext({ viewport: { width: 390, height: 780 }, locale: 'zh-CN', isMobile: false });
  for (const ctx of [govCtx, corpCtx]) {
    await ctx.addInitScript(LOOPBACK_ONLY);
    await ctx.route('**/*', (route) => {
      const host = new URL(route.request().url()).hostname;
      if (host === '127.0.0.1' || host === 'localhost') return route.continue();
      result.blocked = (result.blocked || 0) + 1;
      log(`blocked request to ${route.request().url()}`);
      return route.abort('blockedbyclient');
    });
  }
  const gov = await govCtx.newPage();
  const corp = await corpCtx.newPage();
  for (const [name, page] of [['gov', gov], ['corp', corp]]) {
    page.on('pageerror', (e) => {
      pageErrors.push(`${name}: ${e.message}`);
      log(`${name} page error: ${e.message}`);
    });
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      consoleErrors.push(`${name}: ${m.text()}`);
      log(`${name} console.error: ${m.text()}`);
    });
  }

  // 1. log in; the principal shows online on the regulator's screen
  await gov.goto(opt.url + '/');
  await gov.locator('[data-test=login]').waitFor();
  check(await gov.evaluate(() => document.documentElement.lang) === 'zh-CN', 'the default language is not zh-CN');
  check((await gov.locator('[data-test=login]').textContent()) === '登录', 'the login button is not in Chinese');
  await shot(gov, '01-login');
  await login(gov, opt.gov);
  await login(corp, opt.corp);
  await tab(gov, 'enterprises');
  const ent = gov.locator(`[data-enterprise=${opt.enterprise}] [data-test=online-count]`);
  await gov.waitForFunction((e) => {
    const el = document.querySelector(`[data-enterprise=${e}] [data-test=online-count]`);
    return el && Number(el.dataset.n) >= 1;
  }, opt.enterprise, { timeout: 10000 });
  result.online_text = await ent.textContent();
  await shot(gov, '02-gov-enterprises');

  // 2. a patrol of the key enterprises; call the enterprise from the queue
  await tab(gov, 'patrol');
  await gov.locator('[data-test=join-viewer]').waitFor();
  check(await gov.locator('[data-test=join-viewer]').isDisabled(), '"join as viewer" is enabled without an SFU');
  await gov.locator('[data-test=patrol-start]').click();
  const item = gov.locator(`[data-test=patrol-items] [data-enterprise=${opt.enterprise}]`);
  await item.waitFor({ timeout: 10000 });
  await shot(gov, '03-gov-patrol-queue');
  const t0 = Date.now();
  await item.locator('[data-test=patrol-call]').click();
  await corp.locator('[data-test=answer]').waitFor({ timeout: 10000 });
  result.timings.ring_ms = Date.now() - t0;
  await shot(corp, '04-corp-incoming-call');
  await corp.locator('[data-test=answer]').click();
  const [gv, cv] = await Promise.all([remoteVideoPlays(gov), remoteVideoPlays(corp)]);
  result.timings.video_ms = Date.now() - t0;
  result.video = { gov: gv, corp: cv };
  await gov.locator('[data-test=call-status][data-state=active]').waitFor({ timeout: 10000 });
  const [gf, cf] = [await framesDecoded(gov), await framesDecoded(corp)];
  result.frames = { gov: gf, corp: cf };
  check(gf > 0 && cf > 0, `frames decoded: gov ${gf}, corp ${cf}`);
  log(`video both ways after ${result.timings.video_ms} ms (${gv.width}x${gv.height}, ${cv.width}x${cv.height})`);
  await sleep(1500); // let the pictures move; and past patrol_min_call_s
  await shot(gov, '05-gov-in-call');
  await shot(corp, '06-corp-in-call');
  // the regulator's connection drops mid-call: the console reconnects,
  // resumes the call (call.resume, then an ICE restart) and video goes on
  const framesBefore = await framesDecoded(corp);
  const peerBack = corp.evaluate(() => new Promise((resolve) => {
    const off = window.yjt.on('call.peer_reconnected', () => {
      off();
      resolve(true);
    });
  }));
  await gov.evaluate(() => window.yjt.ws.close(4000));
  await gov.locator('[data-test=conn][data-state=online]').waitFor({ timeout: 10000 });
  check(await Promise.race([peerBack, sleep(10000).then(() => false)]), 'the plant was not told the regulator came back');
  await gov.waitForFunction(() => {
    const call = [...window.yjt.calls.calls.values()][0];
    return call && call.state === 'active' && call.pc.signalingState === 'stable';
  }, null, { timeout: 10000 });
  // one ICE restart offered by the regulator, answered by the plant
  await gov.waitForFunction(() => [...window.yjt.calls.calls.values()][0].iceRestarts === 1, null, { timeout: 5000 });
  await corp.waitForFunction(() => [...window.yjt.calls.calls.values()][0].renegotiations === 1, null, { timeout: 5000 });
  await sleep(1000);
  const framesAfter = await framesDecoded(corp);
  result.frames_across_drop = framesAfter - framesBefore;
  check(framesAfter > framesBefore, `the plant's video stopped across the regulator's reconnect (${framesBefore} -> ${framesAfter})`);
  check(await corp.locator('[data-test=call-status][data-state=active]').count() === 1, 'the plant\'s call view left the call');

  // mute and unmute reach the local track
  await corp.locator('[data-test=mute]').click();
  check(await corp.evaluate(() => [...window.yjt.calls.calls.values()][0].localStream.getAudioTracks().every((t) => !t.enabled)),
    'mute left the microphone on');
  await corp.locator('[data-test=mute]').click();
  await gov.locator('[data-test=hangup]').click();
  await Promise.all([
    gov.locator('[data-test=call-status][data-state=ended]').waitFor({ timeout: 5000 }),
    corp.locator('[data-test=call-status][data-state=ended]').waitFor({ timeout: 5000 }),
  ]);
  await gov.locator('[data-test=call-overlay]').waitFor({ state: 'detached', timeout: 5000 });

  // 3. note, finish, report and coverage
  await item.locator('[data-test=note-result]').selectOption('normal');
  await item.locator('[data-test=note-findings]').fill('储罐区视频正常，值班人员在岗');
  await item.locator('[data-test=note-save]').click();
  await item.locator('[data-test=noted]:not([hidden])').waitFor({ timeout: 5000 });
  await gov.locator('[data-test=patrol-summary]').fill('重点企业巡查一家，正常');
  await gov.locator('[data-test=patrol-finish]').click();
  const rep = gov.locator(`[data-test=report-items] [data-enterprise=${opt.enterprise}]`);
  await rep.waitFor({ timeout: 5000 });
  check(await rep.getAttribute('data-reached') === '1', 'the report does not count the enterprise as reached');
  await gov.waitForFunction((e) => {
    const li = document.querySelector(`[data-test=coverage] [data-enterprise=${e}]`);
    return li && li.dataset.patrolled === '1';
  }, opt.enterprise, { timeout: 5000 });
  result.coverage = await gov.locator('[data-test=coverage-rate]').textContent();
  await shot(gov, '07-gov-patrol-report');

  // 4. an alarm from the sensor API on both screens; the plant acknowledges
  await tab(gov, 'alarms');
  await tab(corp, 'alarms');
  await gov.locator('[data-test=alarms]').waitFor();
  await sleep(500); // the feeds are subscribed
  const a0 = Date.now();
  await postReading(opt.sensor, 85);
  const govSees = gov.locator('[data-test=alarms] [data-alarm]').first().waitFor({ timeout: 5000 }).then(() => Date.now() - a0);
  const corpSees = corp.locator('[data-test=alarms] [data-alarm]').first().waitFor({ timeout: 5000 }).then(() => Date.now() - a0);
  result.timings.alarm_gov_ms = await govSees;
  result.timings.alarm_corp_ms = await corpSees;
  log(`alarm on the duty screen after ${result.timings.alarm_gov_ms} ms, on the plant's after ${result.timings.alarm_corp_ms} ms`);
  check(result.timings.alarm_gov_ms < 1000, `the alarm took ${result.timings.alarm_gov_ms} ms to reach the duty screen`);
  check(result.timings.alarm_corp_ms < 1000, `the alarm took ${result.timings.alarm_corp_ms} ms to reach the plant`);
  await shot(gov, '08-gov-alarm-raised');
  await corp.locator('[data-test=alarms] [data-alarm] [data-test=ack]').click();
  await corp.locator('[data-test=alarms] [data-alarm][data-state=acknowledged]').waitFor({ timeout: 5000 });
  await gov.locator('[data-test=alarms] [data-alarm][data-state=acknowledged]').waitFor({ timeout: 3000 });
  await shot(corp, '09-corp-alarm-acknowledged');

  // a notice from the console's form, before the restart
  await tab(gov, 'notices');
  await gov.locator('[data-test=notice-title]').fill('关于开展汛期安全检查的通知');
  await gov.locator('[data-test=notice-body]').fill('各企业于本周五前完成自查。');
  await gov.locator('[data-test=notice-audience]').selectOption('enterprises');
  await gov.locator('[data-test=notice-enterprises]').fill(opt.enterprise);
  await gov.locator('[data-test=notice-publish]').click();
  await gov.locator('[data-test=receipt-count][data-read="0"][data-total="1"]').waitFor({ timeout: 5000 });

  // 5. yjtd restarts while the consoles are cut off; pushes made meanwhile
  await tab(corp, 'messages');
  const before = await corp.locator('[data-test=messages] [data-seq]').count();
  await setNetwork(gov, false);
  await setNetwork(corp, false);
  check((await control('restart')) === 'ok', 'the restart failed');
  await Promise.all([
    gov.locator('[data-test=conn][data-state=offline]').waitFor({ timeout: 10000 }),
    corp.locator('[data-test=conn][data-state=offline]').waitFor({ timeout: 10000 }),
  ]);
  await shot(corp, '10-corp-offline');
  const govTok = (await rest('POST', '/api/v1/auth/login', {
    body: { username: opt.gov, password: opt.password, device_id: 'driver', platform: 'web' },
  })).json.token;
  const missed = ['停电检修通知', '节前安全提醒'];
  for (const title of missed) {
    const r = await rest('POST', '/api/v1/notices', {
      token: govTok,
      body: { title, body: `${title}：请各企业落实。`, audience: { type: 'enterprises', enterprises: [opt.enterprise] } },
    });
    check(r.status === 201, `publishing a notice: ${JSON.stringify(r)}`);
  }
  await postReading(opt.sensor2, 95);
  await setNetwork(gov, true);
  await setNetwork(corp, true);
  await Promise.all([
    gov.locator('[data-test=conn][data-state=online]').waitFor({ timeout: 15000 }),
    corp.locator('[data-test=conn][data-state=online]').waitFor({ timeout: 15000 }),
  ]);
  for (const title of missed) {
    await corp.locator('[data-test=messages] [data-kind=notice]', { hasText: title }).waitFor({ timeout: 5000 });
  }
  await corp.locator(`[data-test=messages] [data-kind=alarm]`, { hasText: opt.sensor2 }).waitFor({ timeout: 5000 });
  const after = await corp.locator('[data-test=messages] [data-seq]').count();
  result.missed_shown = after - before;
  check(after - before === 3, `the plant's messages grew by ${after - before}, expected 3 (2 notices, 1 alarm)`);
  const seqs = await corp.locator('[data-test=messages] [data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  check(new Set(seqs).size === seqs.length, `a push is shown twice: ${seqs}`);
  await tab(gov, 'alarms');
  await gov.locator('[data-test=alarms] [data-alarm]', { hasText: opt.sensor2 }).waitFor({ timeout: 5000 });
  await shot(corp, '11-corp-messages-after-restart');
  await shot(gov, '12-gov-alarms-after-restart');

  // 6. read receipt, commitment, English, carrier
  await tab(corp, 'notices');
  await corp.locator('[data-test=notices] [data-notice]', { hasText: '汛期' }).locator('[data-test=mark-read]').click();
  await tab(gov, 'notices');
  await gov.locator('[data-test=receipt-count][data-read="1"][data-total="1"]').waitFor({ timeout: 5000 });
  await shot(gov, '13-gov-notice-receipts');

  await tab(gov, 'commitments');
  await gov.locator(`[data-test=missing] [data-enterprise=${opt.enterprise}]`).waitFor({ timeout: 5000 });
  await shot(gov, '14-gov-commitments-missing');
  await tab(corp, 'commitments');
  await corp.locator('[data-test=commitment-status][data-filed="0"]').waitFor({ timeout: 5000 });
  await corp.locator('[data-test=c-committer]').fill('李明');
  await corp.locator('[data-test=c-submit]').click();
  await corp.locator('[data-test=commitment-status][data-filed="1"]').waitFor({ timeout: 5000 });
  await shot(corp, '15-corp-commitment-filed');
  await tab(gov, 'messages');
  await tab(gov, 'commitments');
  await gov.locator('[data-test=missing]').waitFor();
  check(await gov.locator(`[data-test=missing] [data-enterprise=${opt.enterprise}]`).count() === 0,
    'the enterprise is still on the missing list after filing');

  const missing = await gov.evaluate(async () => (await import('/i18n.js')).missingKeys());
  check(missing.length === 0, `i18n keys missing: ${missing.join(', ')}`);
  await gov.locator('[data-test=lang]').click();
  await gov.locator('nav.tabs [data-tab=commitments]', { hasText: 'Commitments' }).waitFor({ timeout: 3000 });
  await tab(gov, 'alarms');
  await shot(gov, '16-gov-alarms-english');
  await gov.locator('[data-test=lang]').click();

  if (opt.trs) {
    await corp.locator('[data-test=logout]').click();
    await login(corp, opt.trs);
    await corp.locator('[data-test=trs-unavailable]').waitFor({ timeout: 5000 });
    await shot(corp, '17-trs-not-available');
  }
  await govCtx.close();
  await corpCtx.close();
}

// ---------------------------------------------------------------- main

let ok = false;
let failure = null;
const watchdog = setTimeout(() => {
  process.stdout.write(`FAIL: the whole run took over ${opt['deadline-s']} s\n`);
  process.exit(1);
}, Number(opt['deadline-s']) * 1000);

try {
  check(opt.url && opt.password && opt.sensor && opt.sensor2 && opt['api-key'],
    '--url, --password, --sensor, --sensor2 and --api-key are required');
  if (opt.shots) mkdirSync(opt.shots, { recursive: true });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: opt.chromium, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
  try {
    await run(browser);
    check(!pageErrors.length, `uncaught errors in the pages: ${pageErrors.join('; ')}`);
    check(!consoleErrors.length, `errors on the pages' consoles: ${consoleErrors.join('; ')}`);
    check(!result.blocked, `the console tried to fetch ${result.blocked} file(s) from elsewhere`);
    ok = true;
  } finally {
    await browser.close().catch(() => {});
  }
} catch (e) {
  failure = e instanceof Failure ? e.message : `${e.name}: ${e.message}\n${e.stack}`;
}
clearTimeout(watchdog);
stdinLines.close();
result.elapsed_s = (Date.now() - started) / 1000;
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
if (!ok) process.stdout.write(`FAIL: ${failure}\n`);
process.exit(ok ? 0 : 1);
