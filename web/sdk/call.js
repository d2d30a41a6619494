// call.js: video and voice calls over yjtd's signaling (docs/protocol.md,
// "Calls"), each wired to one RTCPeerConnection. yjtd relays offers,
// answers and trickled ICE candidates; media flows between the two devices
// directly or through the TURN server whose credentials arrive with every
// invite reply and call.incoming.
//
//   const call = await client.calls.invite({ user: 'u2fe…' }, { stream });
//   call.on('remote-stream', (s) => (video.srcObject = s));
//   call.on('ended', ({ reason }) => …);
//
//   client.calls.on('incoming', async (call) => {
//     ring(call.from.display_name);
//     await call.accept({ stream });       // or call.decline('busy')
//   });
//
// A call survives a dropped WebSocket: after the client reconnects it sends
// call.resume and restarts ICE with call.renegotiate. With several servers,
// a call through the server's media relay whose server died goes on
// through another: on call.media_lost the call restarts ICE there too.

import { Emitter } from './emitter.js';

const CALL_EVENTS = [
  'call.ringing',
  'call.accepted',
  'call.candidate',
  'call.ended',
  'call.answered_elsewhere',
  'call.renegotiate',
  'call.peer_disconnected',
  'call.peer_reconnected',
  'call.media_lost',
];

/**
 * One call. Events: 'state' (ringing, connecting, active, ended),
 * 'remote-stream' (a MediaStream), 'peer' ({connected}), 'ended' ({reason, by}).
 * Fields: id, direction ('out' | 'in'), from, media, patrol_id, state, pc,
 * localStream, remoteStream, endReason, iceRestarts, renegotiations.
 */
export class Call extends Emitter {
  constructor(manager, fields) {
    super();
    this.manager = manager;
    this.client = manager.client;
    this.id = null;
    this.state = 'new';
    this.pc = null;
    this.localStream = null;
    this.remoteStream = null;
    this.endReason = null;
    this.queuedLocal = []; // candidates gathered before the call had an id
    this.queuedRemote = []; // candidates received before the remote description
    this.iceRestarts = 0; // ICE restarts this side made (after a reconnect, or call.media_lost)
    this.restarting = null; // the ICE restart in progress
    this.renegotiations = 0; // offers from the other side answered
    Object.assign(this, fields);
  }

  setState(state) {
    if (this.state === state || this.state === 'ended') return;
    this.state = state;
    this.emit('state', state);
  }

  /** Creates the RTCPeerConnection with iceServers and the local stream's tracks. */
  makePeer(iceServers, stream) {
    const RTC = this.manager.RTCPeerConnection;
    if (!RTC) throw new Error('no RTCPeerConnection here');
    const pc = new RTC({ iceServers: iceServers || [] });
    this.pc = pc;
    this.localStream = stream || null;
    if (stream) for (const t of stream.getTracks()) pc.addTrack(t, stream);
    else {
      // Receive-only (e.g. a desk without a camera): still ask for both.
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    pc.onicecandidate = (e) => this.onLocalCandidate(e.candidate);
    pc.ontrack = (e) => {
      const s = e.streams && e.streams[0];
      if (s) this.remoteStream = s;
      else {
        if (!this.remoteStream) this.remoteStream = new MediaStream();
        this.remoteStream.addTrack(e.track);
      }
      this.emit('remote-stream', this.remoteStream);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected' && this.state !== 'ended') this.setState('active');
      this.emit('connection', pc.connectionState);
    };
    return pc;
  }

  onLocalCandidate(c) {
    if (c && !c.candidate) return; // end-of-generation marker
    if (c && this.manager.candidateFilter && !this.manager.candidateFilter(c.candidate)) return;
    const init = c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : null;
    if (!this.id) {
      this.queuedLocal.push(init);
      return;
    }
    this.client.request('call.candidate', { call_id: this.id, candidate: init }).catch(() => {});
  }

  flushLocal() {
    const q = this.queuedLocal.splice(0);
    for (const c of q) this.client.request('call.candidate', { call_id: this.id, candidate: c }).catch(() => {});
  }

  async addRemoteCandidate(c) {
    if (!this.pc) return;
    if (!this.pc.remoteDescription) {
      this.queuedRemote.push(c);
      return;
    }
    const init = typeof c === 'string' ? { candidate: c, sdpMid: '0', sdpMLineIndex: 0 } : c;
    try {
      await this.pc.addIceCandidate(init || undefined);
    } catch (e) {
      console.warn('yjt: a remote candidate was refused', e);
    }
  }

  async setRemote(type, sdp) {
    await this.pc.setRemoteDescription({ type, sdp });
    const q = this.queuedRemote.splice(0);
    for (const c of q) await this.addRemoteCandidate(c);
  }

  /** Server events for this call (routed by the manager). */
  async onEvent(type, ev) {
    switch (type) {
      case 'call.ringing':
        this.setState('ringing');
        break;
      case 'call.accepted':
        this.answeredBy = ev.answered_by;
        this.setState('connecting');
        await this.setRemote('answer', ev.sdp);
        break;
      case 'call.candidate':
        await this.addRemoteCandidate(ev.candidate);
        break;
      case 'call.renegotiate':
        if (!this.pc) break; // not answered here: nothing to renegotiate
        if (ev.sdp_type === 'offer') {
          this.renegotiations += 1;
          await this.setRemote('offer', ev.sdp);
          const answer = await this.pc.createAnswer();
          await this.pc.setLocalDescription(answer);
          await this.client.request('call.renegotiate', { call_id: this.id, sdp: answer.sdp, sdp_type: 'answer' });
        } else {
          await this.setRemote('answer', ev.sdp);
        }
        break;
      case 'call.peer_disconnected':
        this.emit('peer', { connected: false });
        break;
      case 'call.peer_reconnected':
        this.emit('peer', { connected: true });
        break;
      case 'call.media_lost':
        // The server carrying the media died; another holds the call now.
        // Its answer brings its own certificate: the browser restarts DTLS.
        this.emit('media-lost', {});
        if (this.pc && this.state !== 'ended') await this.restartIce();
        break;
      case 'call.answered_elsewhere':
        this.finish('answered_elsewhere');
        break;
      case 'call.ended':
        this.finish(ev.reason, ev.by);
        break;
    }
  }

  /** Accepts an incoming call with the local stream (null: receive only). */
  async accept({ stream = null } = {}) {
    if (this.direction !== 'in' || this.state !== 'ringing') throw new Error(`cannot accept a call that is ${this.state}`);
    this.setState('connecting');
    const pc = this.makePeer(this.iceServers, stream);
    await this.setRemote('offer', this.offer);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    try {
      await this.client.request('call.accept', { call_id: this.id, sdp: answer.sdp });
    } catch (e) {
      this.finish(e.code === 'conflict' ? 'answered_elsewhere' : 'failed');
      throw e;
    }
    this.flushLocal();
  }

  /** Declines an incoming call. */
  async decline(reason) {
    await this.client.request('call.decline', reason ? { call_id: this.id, reason } : { call_id: this.id });
    this.finish('declined');
  }

  /** Hangs up (before an answer: cancels or declines). */
  async hangup() {
    if (this.state === 'ended') return;
    if (this.id) {
      try {
        await this.client.request('call.hangup', { call_id: this.id });
      } catch (e) {
        if (e.code !== 'not_found') throw e;
      }
    }
    this.finish('hangup', this.client.user && this.client.user.id);
  }

  /** Mutes (or unmutes) the local audio or video. */
  setMuted(kind, muted) {
    if (!this.localStream) return;
    for (const t of this.localStream.getTracks()) if (t.kind === kind) t.enabled = !muted;
  }

  /** Swaps the camera or microphone mid-call (a track from getUserMedia). */
  async replaceTrack(track) {
    if (!this.pc) return;
    const sender = this.pc.getSenders().find((s) => s.track && s.track.kind === track.kind);
    if (sender) await sender.replaceTrack(track);
    if (this.localStream) {
      for (const old of this.localStream.getTracks().filter((t) => t.kind === track.kind)) {
        this.localStream.removeTrack(old);
        old.stop();
      }
      this.localStream.addTrack(track);
    }
  }

  /** After a reconnect: call.resume, then an ICE restart if the call was answered. */
  async resume() {
    let r;
    try {
      r = await this.client.request('call.resume', { call_id: this.id });
    } catch {
      this.finish('failed');
      return;
    }
    if (r.state === 'active' && this.pc) await this.restartIce();
  }

  /** An ICE restart offer (one at a time: a second asked meanwhile joins it). */
  restartIce() {
    if (this.restarting) return this.restarting;
    this.restarting = (async () => {
      const offer = await this.pc.createOffer({ iceRestart: true });
      await this.pc.setLocalDescription(offer);
      await this.client.request('call.renegotiate', { call_id: this.id, sdp: offer.sdp, sdp_type: 'offer' });
      this.iceRestarts += 1;
    })().finally(() => {
      this.restarting = null;
    });
    return this.restarting;
  }

  finish(reason, by) {
    if (this.state === 'ended') return;
    this.endReason = reason;
    this.state = 'ended';
    if (this.pc) this.pc.close();
    this.manager.calls.delete(this.id);
    this.emit('state', 'ended');
    this.emit('ended', { reason, by });
  }
}

/**
 * The client's calls: invite() places one, 'incoming' hands out calls that
 * ring here. Options: {RTCPeerConnection, candidateFilter(string) → bool}
 * (the filter drops local candidates that must not be signalled).
 */
export class CallManager extends Emitter {
  constructor(client, rtc) {
    super();
    this.client = client;
    this.RTCPeerConnection = rtc.RTCPeerConnection || globalThis.RTCPeerConnection;
    this.candidateFilter = rtc.candidateFilter || null;
    this.calls = new Map(); // call_id -> Call
    for (const type of CALL_EVENTS) {
      client.on(type, (ev) => {
        const call = this.calls.get(ev.call_id);
        if (call) call.onEvent(type, ev).catch((e) => console.warn(`yjt: ${type}`, e));
      });
    }
    client.on('call.incoming', (ev) => this.onIncoming(ev));
    client.on('ready', ({ reconnect }) => {
      if (!reconnect) return;
      for (const call of this.calls.values()) if (call.state !== 'ringing' || call.direction === 'out') call.resume();
    });
  }

  /** The call in progress with that id, if any. */
  get(id) {
    return this.calls.get(id);
  }

  /**
   * Places a call. to: {user} or {enterprise, positions?}; opts: {stream,
   * media, patrol_id}. Resolves with the Call once the invite is accepted
   * by the server (it is then ringing, or ends at once with offline/busy).
   */
  async invite(to, { stream = null, media, patrol_id } = {}) {
    const ice = await this.client.request('ice.servers');
    const call = new Call(this, { direction: 'out', to, media, patrol_id, iceServers: ice.ice_servers });
    const pc = call.makePeer(ice.ice_servers, stream);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const fields = { to, sdp: offer.sdp };
    if (media) fields.media = media;
    if (patrol_id) fields.patrol_id = patrol_id;
    let r;
    try {
      r = await this.client.request('call.invite', fields);
    } catch (e) {
      pc.close();
      throw e;
    }
    call.id = r.call_id;
    this.calls.set(call.id, call);
    call.setState('calling');
    call.flushLocal();
    return call;
  }

  onIncoming(ev) {
    const known = this.calls.get(ev.call_id);
    if (known) {
      // Rung again (after a resume, or by the server that took the call
      // over): through the media relay the newest offer is the one to
      // answer.
      if (known.direction === 'in' && known.state === 'ringing' && ev.sdp) {
        known.offer = ev.sdp;
        if (ev.ice_servers) known.iceServers = ev.ice_servers;
      }
      return;
    }
    const call = new Call(this, {
      direction: 'in',
      id: ev.call_id,
      from: ev.from,
      to: ev.to,
      enterprise: ev.enterprise,
      patrol_id: ev.patrol_id,
      media: ev.media,
      offer: ev.sdp,
      iceServers: ev.ice_servers || [],
    });
    this.calls.set(call.id, call);
    call.setState('ringing');
    this.client.request('call.ringing', { call_id: call.id }).catch(() => {});
    this.emit('incoming', call);
  }
}
