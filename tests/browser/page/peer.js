// One party of an end-to-end call test, running in a headless Chromium page.
// It speaks yjt.v1 to yjtd over a WebSocket exactly as an app would (login,
// ice.servers, call.invite / call.incoming / call.accept / call.accepted,
// trickle ICE with call.candidate, call.hangup / call.ended) and runs a real
// RTCPeerConnection with the fake camera and microphone. tests/browser/call.mjs
// drives it through window.peer and reads the results from getStats().
//
// Everything stays on loopback: ICE servers are kept only when they point at
// 127.0.0.1, and only loopback and relay candidates are signalled. With
// window.yjtTcpOnly (call.mjs --tcp-only) the page stands for a device on a
// network that lets no UDP through: every UDP candidate, its own and those it
// is given, is dropped, so ICE can only pair TCP candidates (RFC 6544).

const SUBPROTOCOL = 'yjt.v1';
const t0 = performance.now();
const logLines = [];

function note(msg) {
  const line = `${((performance.now() - t0) / 1000).toFixed(3)} ${msg}`;
  logLines.push(line);
  const pre = document.getElementById('log');
  if (pre && logLines.length < 400) pre.textContent += line + '\n';
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- candidates and servers

// "candidate:FOUNDATION COMPONENT PROTOCOL PRIORITY ADDRESS PORT typ TYPE ..."
function parseCandidate(line) {
  const s = line.startsWith('a=') ? line.slice(2) : line;
  const f = s.split(' ');
  const typ = f.indexOf('typ');
  return {
    protocol: (f[2] || '').toLowerCase(),
    address: f[4] || '',
    port: Number(f[5]),
    type: typ >= 0 ? f[typ + 1] : '',
  };
}

function isLoopbackAddress(a) {
  return a.startsWith('127.') || a === '::1' || a === '[::1]' || a === 'localhost';
}

// A candidate the network lets through: with --tcp-only, TCP ones only.
function reachable(line) {
  return !window.yjtTcpOnly || parseCandidate(line).protocol === 'tcp';
}

// Candidates that may be signalled: relay ones (their address is coturn's
// relay address, loopback here) and host candidates on loopback. Host
// candidates on other interfaces and mDNS (.local) names are dropped, so no
// connectivity check ever leaves the machine.
function signallable(line) {
  const c = parseCandidate(line);
  return (c.type === 'relay' || isLoopbackAddress(c.address)) && reachable(line);
}

// Offers and answers are sent without candidates of other interfaces too
// (trickle ICE: they normally carry none).
function stripCandidates(sdp) {
  return sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') || signallable(l))
    .join('\r\n');
}

function urlHost(url) {
  let rest = url.replace(/^(stuns?|turns?):/i, '').split('?')[0];
  if (rest.startsWith('[')) return rest.slice(0, rest.indexOf(']') + 1);
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) rest = rest.slice(0, colon);
  return rest;
}

// The servers from yjtd, restricted to the URLs on loopback.
function loopbackIceServers(list) {
  const out = [];
  for (const s of list || []) {
    const urls = (Array.isArray(s.urls) ? s.urls : [s.urls]).filter((u) => typeof u === 'string');
    const kept = urls.filter((u) => isLoopbackAddress(urlHost(u)));
    if (kept.length !== urls.length) note(`ice server URLs off loopback ignored: ${urls.filter((u) => !kept.includes(u)).join(' ')}`);
    if (!kept.length) continue;
    const e = { urls: kept };
    if (s.username !== undefined) e.username = s.username;
    if (s.credential !== undefined) e.credential = s.credential;
    out.push(e);
  }
  return out;
}

// ---------------------------------------------------------------- yjt.v1 over WebSocket

class Signal {
  constructor() {
    this.ws = null;
    this.nextId = 0;
    this.pending = new Map();
    this.events = [];
    this.waiters = [];
    this.handlers = new Map();
    this.closed = null;
    this.sent = [];
  }

  open(url, timeoutMs = 10000) {
    return withTimeout(new Promise((resolve, reject) => {
      const ws = new WebSocket(url, SUBPROTOCOL);
      this.ws = ws;
      ws.onopen = () => {
        if (ws.protocol !== SUBPROTOCOL) note(`server chose subprotocol ${JSON.stringify(ws.protocol)}`);
        resolve();
      };
      ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
      ws.onclose = (e) => {
        this.closed = { code: e.code, reason: e.reason };
        note(`websocket closed ${e.code} ${e.reason}`);
        for (const [, p] of this.pending) p.reject(new Error(`connection closed (${e.code} ${e.reason})`));
        this.pending.clear();
        this.wake();
      };
      ws.onmessage = (e) => this.receive(e.data);
    }), timeoutMs, `WebSocket open ${url}`);
  }

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      note(`unparsable message: ${String(data).slice(0, 200)}`);
      return;
    }
    if (msg && Object.prototype.hasOwnProperty.call(msg, 're')) {
      const p = this.pending.get(msg.re);
      if (p) {
        this.pending.delete(msg.re);
        p.resolve(msg);
      } else {
        note(`reply to unknown id: ${data.slice(0, 200)}`);
      }
      return;
    }
    if (msg && typeof msg.type === 'string') {
      note(`<- ${msg.type}${msg.call_id ? ' ' + msg.call_id : ''}`);
      this.events.push(msg);
      const h = this.handlers.get(msg.type);
      if (h) h(msg);
      this.wake();
      return;
    }
    note(`message with neither re nor type: ${data.slice(0, 200)}`);
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  on(type, handler) {
    this.handlers.set(type, handler);
  }

  request(type, fields = {}, timeoutMs = 10000) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error(`${type}: connection is not open`));
    }
    const id = ++this.nextId;
    const msg = Object.assign({ id, type }, fields);
    const p = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.sent.push(type);
    this.ws.send(JSON.stringify(msg));
    return withTimeout(p, timeoutMs, `reply to ${type}`);
  }

  async ok(type, fields = {}, timeoutMs = 10000) {
    const reply = await this.request(type, fields, timeoutMs);
    if (reply.ok !== true) {
      throw new Error(`${type} failed: ${JSON.stringify(reply).slice(0, 500)}`);
    }
    return reply;
  }

  // The first queued event of the type that satisfies pred (it stays queued).
  async waitEvent(type, timeoutMs, pred = () => true) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const ev = this.events.find((e) => e.type === type && pred(e));
      if (ev) return ev;
      if (this.closed) throw new Error(`connection closed (${this.closed.code}) while waiting for ${type}`);
      const left = deadline - performance.now();
      if (left <= 0) {
        const seen = this.events.map((e) => e.type).join(', ') || 'none';
        throw new Error(`no ${type} event within ${timeoutMs} ms (events so far: ${seen})`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

// An SDP from the other end as the page applies it: the test driver may
// route the media through a lossy path (call.mjs --loss-pct), and a
// network without UDP loses the UDP candidates (--tcp-only).
async function remoteSdp(sdp) {
  const lines = sdp.split('\r\n');
  const kept = lines.filter((l) => !l.startsWith('a=candidate:') || reachable(l));
  if (kept.length !== lines.length) {
    window.peer.counts.remoteDropped += lines.length - kept.length;
    sdp = kept.join('\r\n');
  }
  return window.yjtRewriteSdp ? window.yjtRewriteSdp(sdp) : sdp;
}

// ---------------------------------------------------------------- stats

async function readStats(pc) {
  const report = await pc.getStats();
  const out = {
    framesDecoded: 0,
    videoStreamsDecoding: 0,
    nackCount: 0,
    packetsLost: 0,
    framesReceived: 0,
    frameWidth: null,
    frameHeight: null,
    audioPacketsReceived: 0,
    // what the far end's receiver reports told this side about what it
    // sends (RTCP RR: through the SFU, the server's reports)
    remoteInbound: {},
    // what the senders' reports told this side about what it receives
    // (RTCP SR: through the SFU, passed on by the server)
    remoteOutbound: {},
    pair: null,
  };
  let selectedId = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.framesDecoded += s.framesDecoded || 0;
      out.nackCount += s.nackCount || 0;
      out.packetsLost += s.packetsLost || 0;
      if (s.framesDecoded > 0) out.videoStreamsDecoding++;
      out.framesReceived += s.framesReceived || 0;
      if (s.frameWidth) out.frameWidth = s.frameWidth;
      if (s.frameHeight) out.frameHeight = s.frameHeight;
    }
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioPacketsReceived += s.packetsReceived || 0;
    if (s.type === 'remote-outbound-rtp') {
      out.remoteOutbound[s.kind] = {
        packetsSent: s.packetsSent,
        reportsSent: s.reportsSent || 0,
      };
    }
    if (s.type === 'remote-inbound-rtp') {
      out.remoteInbound[s.kind] = {
        packetsLost: s.packetsLost,
        fractionLost: s.fractionLost,
        jitter: s.jitter,
        roundTripTime: s.roundTripTime,
        roundTripTimeMeasurements: s.roundTripTimeMeasurements || 0,
      };
    }
    if (s.type === 'transport' && s.selectedCandidatePairId) selectedId = s.selectedCandidatePairId;
  });
  let pair = selectedId ? report.get(selectedId) : null;
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pair = s;
    });
  }
  if (pair) {
    const side = (id) => {
      const c = report.get(id);
      if (!c) return null;
      return {
        candidateType: c.candidateType,
        address: c.address,
        port: c.port,
        protocol: c.protocol,
        relayProtocol: c.relayProtocol || null,
        url: c.url || null,
      };
    };
    out.pair = {
      state: pair.state,
      nominated: !!pair.nominated,
      bytesReceived: pair.bytesReceived || 0,
      local: side(pair.localCandidateId),
      remote: side(pair.remoteCandidateId),
    };
  }
  return out;
}

// ---------------------------------------------------------------- media

let mediaPromise = null;

function media() {
  // getUserMedia first: once the page holds the camera, Chromium signals host
  // candidates with their addresses rather than mDNS names.
  if (!mediaPromise) {
    mediaPromise = navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: 320, height: 240, frameRate: 15 },
    }).then((stream) => {
      document.getElementById('local').srcObject = stream;
      note(`media: ${stream.getTracks().map((t) => t.kind + ':' + t.label).join(', ')}`);
      return stream;
    });
  }
  return mediaPromise;
}

// ---------------------------------------------------------------- the call

class Peer {
  constructor() {
    this.sig = new Signal();
    this.user = null;
    this.pc = null;
    this.callId = null;
    this.role = null;
    this.iceServers = [];
    this.remoteQueue = [];
    this.localQueue = [];
    this.canSendCandidates = false;
    this.sendChain = Promise.resolve();
    this.eventChain = Promise.resolve();
    this.errors = [];
    this.counts = { localCandidates: 0, localDropped: 0, sentCandidates: 0, sentEnd: 0,
      receivedCandidates: 0, receivedEnd: 0, addedCandidates: 0, receivedTypes: {},
      remoteDropped: 0 };
    this.stateLog = [];

    this.sig.on('call.accepted', (ev) => this.serial(() => this.onAccepted(ev)));
    this.sig.on('call.candidate', (ev) => this.serial(() => this.onRemoteCandidate(ev)));
    this.sig.on('call.renegotiate', (ev) => {
      if (ev.sdp_type === 'offer') this.serial(() => this.onServerOffer(ev));
    });
  }

  serial(fn) {
    this.eventChain = this.eventChain.then(fn).catch((e) => this.fail(e));
    return this.eventChain;
  }

  fail(e) {
    const msg = e && e.message ? e.message : String(e);
    note(`error: ${msg}`);
    this.errors.push(msg);
  }

  async connect(url) {
    await this.sig.open(url);
    note(`connected ${url}`);
  }

  // After the server died: a new connection (to another server), the same
  // account and device, and call.resume of the call in progress.
  async reconnect(url, username, password, deviceId) {
    if (this.sig.ws) this.sig.ws.close();
    this.sig.closed = null;
    await this.connect(url);
    await this.login(username, password, deviceId);
    const reply = await this.sig.ok('call.resume', { call_id: this.callId });
    note(`resumed ${this.callId}: ${reply.state}`);
    // A caller away when the call was answered gets the answer here.
    if (this.role === 'caller' && reply.state === 'active' && reply.sdp &&
        this.pc.signalingState === 'have-local-offer') {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: await remoteSdp(reply.sdp) });
      note('answer applied (from call.resume)');
    }
    return { state: reply.state, role: reply.role, has_sdp: typeof reply.sdp === 'string',
      answer_fingerprint: reply.sdp ? (reply.sdp.match(/^a=fingerprint:(.*)$/m) || [])[1] : null };
  }

  async login(username, password, deviceId) {
    const reply = await this.sig.ok('auth.login', { username, password, device_id: deviceId, platform: 'web' }, 20000);
    this.user = reply.user || null;
    note(`logged in as ${username} (${this.user && this.user.id})`);
    return this.user;
  }

  async fetchIceServers() {
    const reply = await this.sig.ok('ice.servers');
    return reply.ice_servers;
  }

  makePc(iceServers, relay) {
    this.iceServers = loopbackIceServers(iceServers);
    const config = {
      iceServers: this.iceServers,
      iceTransportPolicy: relay ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
    };
    note(`RTCPeerConnection ${JSON.stringify({ ...config, iceServers: this.iceServers.map((s) => s.urls) })}`);
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    pc.onicecandidate = (e) => this.onLocalCandidate(e.candidate);
    pc.onicecandidateerror = (e) => note(`icecandidateerror ${e.errorCode} ${e.errorText} ${e.url}`);
    pc.oniceconnectionstatechange = () => this.track('ice', pc.iceConnectionState);
    pc.onconnectionstatechange = () => this.track('pc', pc.connectionState);
    pc.onicegatheringstatechange = () => this.track('gathering', pc.iceGatheringState);
    pc.ontrack = (e) => {
      note(`remote track ${e.track.kind}`);
      // One <video> per remote stream (a viewer of an SFU call gets one
      // from each party): the first fills #remote, others get their own.
      const stream = (e.streams && e.streams[0]) || new MediaStream([e.track]);
      if (!e.streams || !e.streams[0]) {
        if (e.track.kind !== 'video') return;
      }
      const shown = [...document.querySelectorAll('video.remote')];
      let v = shown.find((x) => x.srcObject === stream);
      if (!v) {
        v = document.getElementById('remote');
        if (v.srcObject) {
          v = document.createElement('video');
          Object.assign(v, { muted: true, autoplay: true, playsInline: true, width: 320, height: 240 });
          document.body.appendChild(v);
        }
        v.classList.add('remote');
        v.srcObject = stream;
      }
      v.play().catch(() => {});
    };
    return pc;
  }

  track(what, state) {
    this.stateLog.push(`${what}:${state}`);
    note(`${what} ${state}`);
  }

  onLocalCandidate(c) {
    if (c && !c.candidate) return; // the empty end-of-generation marker
    if (c) {
      this.counts.localCandidates++;
      if (!signallable(c.candidate)) {
        this.counts.localDropped++;
        return;
      }
    }
    const init = c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : null;
    if (!this.canSendCandidates) {
      this.localQueue.push(init);
      return;
    }
    this.sendCandidate(init);
  }

  sendCandidate(init) {
    // A lossy path under test: the server must know this page only by the
    // address its checks come from (the path's), so candidates stay here.
    if (init && window.yjtKeepCandidates) {
      this.counts.keptCandidates = (this.counts.keptCandidates || 0) + 1;
      return;
    }
    const callId = this.callId;
    this.sendChain = this.sendChain.then(async () => {
      await this.sig.ok('call.candidate', { call_id: callId, candidate: init });
      if (init) this.counts.sentCandidates++;
      else this.counts.sentEnd++;
    }).catch((e) => this.fail(e));
  }

  startSendingCandidates() {
    this.canSendCandidates = true;
    const q = this.localQueue;
    this.localQueue = [];
    for (const init of q) this.sendCandidate(init);
  }

  async onRemoteCandidate(ev) {
    if (this.callId && ev.call_id !== this.callId) {
      this.fail(new Error(`call.candidate for call ${ev.call_id}, expected ${this.callId}`));
      return;
    }
    if (ev.candidate === null || ev.candidate === undefined) {
      this.counts.receivedEnd++;
    } else {
      this.counts.receivedCandidates++;
      const t = parseCandidate(ev.candidate.candidate || '').type || '?';
      this.counts.receivedTypes[t] = (this.counts.receivedTypes[t] || 0) + 1;
    }
    if (ev.candidate && !reachable(ev.candidate.candidate || '')) {
      this.counts.remoteDropped++;
      return;
    }
    if (!this.pc || !this.pc.remoteDescription) {
      this.remoteQueue.push(ev.candidate);
      return;
    }
    await this.addRemote(ev.candidate);
  }

  async addRemote(init) {
    if (init === null || init === undefined) {
      try {
        await this.pc.addIceCandidate();
      } catch (e) {
        note(`end-of-candidates not taken: ${e.message}`);
      }
      return;
    }
    await this.pc.addIceCandidate(init);
    this.counts.addedCandidates++;
  }

  async drainRemote() {
    const q = this.remoteQueue;
    this.remoteQueue = [];
    for (const init of q) await this.addRemote(init);
  }

  // The server offers more sections (a speaker joined the SFU call): answer.
  async onServerOffer(ev) {
    await this.pc.setRemoteDescription({ type: 'offer', sdp: await remoteSdp(ev.sdp) });
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    await this.sig.ok('call.renegotiate', { call_id: this.callId, sdp: stripCandidates(answer.sdp), sdp_type: 'answer' });
    this.counts.serverOffers = (this.counts.serverOffers || 0) + 1;
    note('answered an offer of the server');
  }

  async onAccepted(ev) {
    if (this.role !== 'caller') {
      this.fail(new Error(`call.accepted on the ${this.role} side`));
      return;
    }
    if (this.callId && ev.call_id !== this.callId) {
      this.fail(new Error(`call.accepted for call ${ev.call_id}, expected ${this.callId}`));
      return;
    }
    if (typeof ev.sdp !== 'string' || !ev.sdp.includes('v=0')) {
      this.fail(new Error(`call.accepted without an answer SDP: ${JSON.stringify(ev).slice(0, 300)}`));
      return;
    }
    await this.pc.setRemoteDescription({ type: 'answer', sdp: await remoteSdp(ev.sdp) });
    note('answer applied');
    await this.drainRemote();
  }

  // The caller: ice.servers, an offer, call.invite; the answer comes as
  // call.accepted (onAccepted).
  async call(toUserId, { relay = false, mode = null } = {}) {
    this.role = 'caller';
    const stream = await media();
    const servers = await this.fetchIceServers();
    const pc = this.makePc(servers, relay);
    for (const t of stream.getTracks()) pc.addTrack(t, stream);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const invite = {
      to: { user: toUserId },
      media: { audio: true, video: true },
      sdp: stripCandidates(offer.sdp),
    };
    if (mode) invite.mode = mode;
    const reply = await this.sig.ok('call.invite', invite);
    if (typeof reply.call_id !== 'string' || !reply.call_id) {
      throw new Error(`call.invite reply without call_id: ${JSON.stringify(reply).slice(0, 300)}`);
    }
    this.callId = reply.call_id;
    note(`invited: call ${this.callId}`);
    // Candidates gathered so far go out now, before the callee has
    // accepted: yjtd holds them and delivers them in order on accept.
    this.startSendingCandidates();
    return { call_id: reply.call_id, mode: reply.mode, ice_servers: reply.ice_servers, ice_servers_fetched: servers };
  }

  // The callee: waits for call.incoming, rings, answers with call.accept.
  // nth: answer the nth call.incoming (a call rung again, by the server
  // that took it over, carries that server's offer).
  async answer({ relay = false, timeoutMs = 15000, nth = 1 } = {}) {
    this.role = 'callee';
    const stream = await media();
    const nthIncoming = (e) => this.sig.events.filter((x) => x.type === 'call.incoming').indexOf(e) === nth - 1;
    const inc = await this.sig.waitEvent('call.incoming', timeoutMs, nthIncoming);
    this.callId = inc.call_id;
    if (typeof inc.sdp !== 'string' || !inc.sdp.includes('v=0')) {
      throw new Error(`call.incoming without an offer SDP: ${JSON.stringify(inc).slice(0, 300)}`);
    }
    await this.sig.ok('call.ringing', { call_id: this.callId });
    const servers = await this.fetchIceServers();
    const pc = this.makePc(servers, relay);
    await pc.setRemoteDescription({ type: 'offer', sdp: await remoteSdp(inc.sdp) });
    for (const t of stream.getTracks()) pc.addTrack(t, stream);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await this.sig.ok('call.accept', { call_id: this.callId, sdp: stripCandidates(answer.sdp) });
    note(`accepted call ${this.callId}`);
    this.startSendingCandidates();
    await this.serial(() => this.drainRemote());
    return {
      call_id: inc.call_id,
      from: inc.from || null,
      media: inc.media || null,
      mode: inc.mode || null,
      offer: inc.sdp,
      ice_servers: inc.ice_servers,
      ice_servers_fetched: servers,
    };
  }

  // A third party of an SFU call: receive-only transceivers (two of each
  // kind, one per party) offered in call.join, the server's answer back.
  async join(callId, { role = 'viewer', relay = false } = {}) {
    this.role = role;
    this.callId = callId;
    const servers = await this.fetchIceServers();
    const pc = this.makePc(servers, relay);
    // A speaker sends its camera and microphone in its first two sections.
    const kinds = ['audio', 'video', 'audio', 'video'];
    if (role === 'speaker') {
      const stream = await media();
      for (const t of stream.getTracks()) pc.addTrack(t, stream);
      kinds.splice(0, 2);
    }
    for (const kind of kinds) pc.addTransceiver(kind, { direction: 'recvonly' });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const reply = await this.sig.ok('call.join', { call_id: callId, sdp: stripCandidates(offer.sdp), role });
    await pc.setRemoteDescription({ type: 'answer', sdp: await remoteSdp(reply.sdp) });
    this.startSendingCandidates();
    note(`joined call ${callId} as ${role}`);
    return { participants: reply.participants, answer: reply.sdp };
  }

  // An ICE restart, as a phone does when it moves from Wi-Fi to 4G: a new
  // offer with new ICE credentials in call.renegotiate, the answer back as
  // a call.renegotiate event. Returns the local ufrag before and after.
  async restartIce(timeoutMs = 10000) {
    const pc = this.pc;
    const ufrag = (sdp) => (sdp.match(/^a=ice-ufrag:(.*)$/m) || [])[1];
    const before = ufrag(pc.localDescription.sdp);
    const isAnswer = (e) => e.type === 'call.renegotiate' && e.sdp_type === 'answer';
    const answers = this.sig.events.filter(isAnswer).length;
    pc.restartIce();
    const offer = await pc.createOffer({ iceRestart: true });
    await pc.setLocalDescription(offer);
    await this.sig.ok('call.renegotiate', { call_id: this.callId, sdp: stripCandidates(offer.sdp), sdp_type: 'offer' });
    await this.sig.waitEvent('call.renegotiate', timeoutMs,
      (e) => isAnswer(e) && this.sig.events.filter(isAnswer).indexOf(e) >= answers);
    const ev = this.sig.events.filter(isAnswer)[answers];
    await pc.setRemoteDescription({ type: 'answer', sdp: await remoteSdp(ev.sdp) });
    note('ICE restarted');
    const fp = (sdp) => (sdp.match(/^a=fingerprint:(.*)$/m) || [])[1];
    return { before, after: ufrag(pc.localDescription.sdp), remote_after: ufrag(ev.sdp),
      remote_fingerprint: fp(ev.sdp),
      remote_candidates: (ev.sdp.match(/^a=candidate:.*$/gm) || []).map((l) => l.slice(2)) };
  }

  async leave() {
    await this.sig.ok('call.leave', { call_id: this.callId });
  }

  // Waits until n video streams decode (a viewer of two parties: 2).
  async waitStreams(n, timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    let last = null;
    for (;;) {
      if (this.pc) last = await readStats(this.pc);
      if (last && last.videoStreamsDecoding >= n) return last;
      if (performance.now() >= deadline) {
        throw new Error(`${n} video streams did not decode within ${timeoutMs} ms; last stats ${JSON.stringify(last)}`);
      }
      await sleep(100);
    }
  }

  async waitDecoded(timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    let last = null;
    for (;;) {
      if (this.pc) last = await readStats(this.pc);
      if (last && last.framesDecoded > 0 && last.pair) return last;
      if (this.errors.length) throw new Error(`peer errors: ${this.errors.join('; ')}`);
      if (performance.now() >= deadline) {
        throw new Error(`no decoded video within ${timeoutMs} ms; last stats ${JSON.stringify(last)}; ` +
          `states ${this.stateLog.join(' ')}; candidates ${JSON.stringify(this.counts)}`);
      }
      await sleep(250);
    }
  }

  async stats() {
    return this.pc ? readStats(this.pc) : null;
  }

  async hangup() {
    await this.sig.ok('call.hangup', { call_id: this.callId });
  }

  async waitEnded(timeoutMs) {
    const ev = await this.sig.waitEvent('call.ended', timeoutMs, (e) => e.call_id === this.callId);
    return { call_id: ev.call_id, reason: ev.reason };
  }

  close() {
    if (this.pc) this.pc.close();
  }

  summary() {
    return {
      role: this.role,
      user: this.user,
      call_id: this.callId,
      counts: this.counts,
      states: this.stateLog,
      errors: this.errors,
      events: this.sig.events.map((e) => e.type),
      visibility: document.visibilityState,
    };
  }
}

// ---------------------------------------------------------------- checks without yjtd

// Relay-only gathering against the given servers: which candidates come,
// which errors (401 from a TURN server that rejects the credentials).
async function gather(iceServers, { relay = true, timeoutMs = 10000 } = {}) {
  const pc = new RTCPeerConnection({ iceServers: loopbackIceServers(iceServers), iceTransportPolicy: relay ? 'relay' : 'all' });
  const candidates = [];
  const errors = [];
  pc.createDataChannel('probe');
  const done = new Promise((resolve) => {
    pc.onicecandidate = (e) => {
      if (!e.candidate) resolve();
      else if (e.candidate.candidate) candidates.push(parseCandidate(e.candidate.candidate));
    };
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === 'complete') resolve();
    };
  });
  pc.onicecandidateerror = (e) => errors.push({ errorCode: e.errorCode, errorText: e.errorText, url: e.url });
  await pc.setLocalDescription(await pc.createOffer());
  let complete = true;
  try {
    await withTimeout(done, timeoutMs, 'ICE gathering');
  } catch {
    complete = false;
  }
  pc.close();
  return { complete, candidates, errors };
}

// Two RTCPeerConnections in this page, connected to each other over
// loopback with the fake camera: proves the browser, its fake media and
// WebRTC work here, independent of yjtd.
async function loopbackCall(timeoutMs = 15000) {
  const stream = await media();
  const a = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  const b = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  let dropped = 0;
  const wire = (from, to) => {
    from.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      if (!signallable(e.candidate.candidate)) {
        dropped++;
        return;
      }
      to.addIceCandidate(e.candidate).catch((err) => note(`addIceCandidate: ${err.message}`));
    };
  };
  wire(a, b);
  wire(b, a);
  b.ontrack = (e) => {
    const v = document.getElementById('remote');
    v.srcObject = e.streams[0] || new MediaStream([e.track]);
    v.play().catch(() => {});
  };
  for (const t of stream.getTracks()) a.addTrack(t, stream);
  const offer = await a.createOffer();
  await a.setLocalDescription(offer);
  await b.setRemoteDescription({ type: 'offer', sdp: stripCandidates(offer.sdp) });
  const answer = await b.createAnswer();
  await b.setLocalDescription(answer);
  await a.setRemoteDescription({ type: 'answer', sdp: stripCandidates(answer.sdp) });
  const deadline = performance.now() + timeoutMs;
  let last = null;
  try {
    for (;;) {
      last = await readStats(b);
      if (last.framesDecoded > 0 && last.pair) return { stats: last, dropped, visibility: document.visibilityState };
      if (performance.now() >= deadline) {
        throw new Error(`loopback call decoded no video within ${timeoutMs} ms: ${JSON.stringify(last)} ` +
          `ice ${a.iceConnectionState}/${b.iceConnectionState}`);
      }
      await sleep(250);
    }
  } finally {
    a.close();
    b.close();
  }
}

window.peer = new Peer();
window.peerTools = { gather, loopbackCall, log: logLines };
window.peerReady = true;
note('peer page loaded');
