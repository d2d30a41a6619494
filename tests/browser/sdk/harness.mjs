// A real yjtd for the SDK tests (and the console's browser test driver):
// started on a free loopback port with a temp data dir, its users and
// enterprises made with yjtctl first, stopped (SIGTERM, clean exit checked)
// at the end. Binaries: $YJTD / $YJTCTL, else <repo>/build/yjtd, yjtctl.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
export const YJTD = process.env.YJTD || path.join(REPO, 'build', 'yjtd');
export const YJTCTL = process.env.YJTCTL || path.join(REPO, 'build', 'yjtctl');
export const PASSWORD = 'correct-horse-1';

function ephemeralRange() {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return [lo, hi];
  } catch {
    return [32768, 60999];
  }
}

function canBind(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port that is free now, taken outside the kernel's ephemeral range so
 * that no client socket (of this run or another) lands on it before yjtd
 * binds it.
 */
export async function freePort() {
  const [lo, hi] = ephemeralRange();
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (port >= lo && port <= hi) continue;
    if (await canBind(port)) return port;
  }
  throw new Error('no free port outside the ephemeral range');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls pred (sync or async) until it is truthy; fails after timeoutMs. */
export async function waitFor(pred, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export class Yjtd {
  /**
   * @param {object} o
   * @param {Array<[string,string,string,boolean?]>} [o.enterprises]  [id, name, division, key]
   * @param {Array<object>} [o.users]  {username, role, org, position?, display_name?}
   * @param {object} [o.settings]  --set KEY=VALUE
   */
  constructor({ enterprises = [], users = [], settings = {}, dataDir } = {}) {
    this.dir = dataDir || mkdtempSync(path.join(tmpdir(), 'yjt-sdk-'));
    this.ownsDir = !dataDir;
    this.enterprises = enterprises;
    this.userSpecs = users;
    this.settings = { hash_iterations: '1000', ...settings };
    this.users = {}; // username -> id
    this.proc = null;
    this.starts = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  ctl(...args) {
    const r = spawnSync(YJTCTL, ['--data-dir', this.dir, ...args.map(String)], {
      encoding: 'utf8',
      env: { ...process.env, YJT_HASH_ITERATIONS: '1000' },
    });
    if (r.status !== 0) throw new Error(`yjtctl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout.trim();
  }

  addUser({ username, role, org, position, display_name: dn }) {
    const args = ['user', 'add', '--username', username, '--password', PASSWORD, '--role', role, '--org', org];
    if (position) args.push('--position', position);
    if (dn) args.push('--display-name', dn);
    this.users[username] = this.ctl(...args);
    return this.users[username];
  }

  async setup() {
    for (const [id, name, division, key] of this.enterprises) {
      const args = ['enterprise', 'add', '--id', id, '--name', name, '--division', division];
      if (key) args.push('--key');
      this.ctl(...args);
    }
    for (const u of this.userSpecs) this.addUser(u);
    this.port = await freePort();
    return this.start();
  }

  async start() {
    const n = this.starts++;
    this.stderrPath = path.join(this.dir, `yjtd.${n}.stderr`);
    const args = ['--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dir];
    for (const [k, v] of Object.entries(this.settings)) args.push('--set', `${k}=${v}`);
    this.proc = spawn(YJTD, args, {
      cwd: this.dir,
      stdio: ['ignore', openSync(path.join(this.dir, `yjtd.${n}.stdout`), 'w'), openSync(this.stderrPath, 'w')],
    });
    this.exit = new Promise((resolve) => this.proc.once('exit', (code, sig) => resolve({ code, sig })));
    await waitFor(async () => {
      if (this.proc.exitCode !== null) throw new Error(`yjtd exited at start:\n${this.stderr()}`);
      try {
        return (await fetch(`${this.url}/healthz`)).status === 200;
      } catch {
        return false;
      }
    }, 10000, 'yjtd /healthz');
    return this;
  }

  stderr() {
    try {
      return readFileSync(this.stderrPath, 'utf8');
    } catch {
      return '';
    }
  }

  /** SIGTERM and wait; throws unless yjtd exits 0 and its stderr is free of sanitizer reports. */
  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    if (p.exitCode === null) p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 10000);
    const { code, sig } = await this.exit;
    clearTimeout(timer);
    const err = this.stderr();
    if (code !== 0) throw new Error(`yjtd exited with ${code ?? sig}:\n${err.slice(-3000)}`);
    for (const m of ['ERROR: LeakSanitizer', 'runtime error:', 'AddressSanitizer']) {
      if (err.includes(m)) throw new Error(`yjtd stderr has ${m}:\n${err.slice(-5000)}`);
    }
  }

  async restart() {
    await this.stop();
    return this.start();
  }

  /** stop() and remove the data dir. */
  async close() {
    try {
      await this.stop();
    } finally {
      if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** A REST call; resolves with {status, json}. */
  async http(method, p, { token, body, headers = {} } = {}) {
    const h = { ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(this.url + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: r.status, json, text, headers: r.headers };
  }

  async token(username, device_id = 'rest-dev') {
    const r = await this.http('POST', '/api/v1/auth/login', {
      body: { username, password: PASSWORD, device_id, platform: 'web' },
    });
    if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${r.text}`);
    return r.json.token;
  }

  /** A sensor of enterprise with high/high_high thresholds (as an admin user `ops`) and a gateway key. */
  async sensor(enterprise, id, thresholds = { high: 80, high_high: 90 }) {
    const tok = await this.token('ops');
    const r = await this.http('PUT', `/api/v1/sensors/${id}`, {
      token: tok,
      body: { enterprise, kind: 'level', unit: 'm', name: `${id} 液位`, thresholds, deadband: 2, interrupt_after_s: 604800 },
    });
    if (r.status !== 200 && r.status !== 201) throw new Error(`sensor ${id}: ${r.status} ${r.text}`);
    this.keys = this.keys || {};
    if (!this.keys[enterprise]) this.keys[enterprise] = this.ctl('apikey', 'create', '--enterprise', enterprise);
    return this.keys[enterprise];
  }

  async reading(enterprise, sensor, value) {
    const r = await this.http('POST', '/api/v1/readings', {
      headers: { 'X-Api-Key': this.keys[enterprise] },
      body: { readings: [{ sensor, value, ts: Date.now() }] },
    });
    if (r.status !== 200 || r.json.accepted !== 1) throw new Error(`reading: ${r.status} ${r.text}`);
    return r.json;
  }
}

export function writeJson(file, obj) {
  writeFileSync(file, JSON.stringify(obj));
}
