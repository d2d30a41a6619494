// The call screen: a full-screen view over the console for one call at a
// time. Incoming calls ring (ringtone, caller's name, answer / decline);
// outgoing calls ring back until answered. In a call: the other side's
// video large, ours small, mute, camera on/off, camera and microphone
// selection, hang up. The SDK's Call does the signaling and WebRTC.

import { fill, h, toast } from '../dom.js';
import { t } from '../i18n.js';
import { choose, chosen, listDevices, openStream, openTrack, ring, stopStream } from '../media.js';

export class CallUi {
  constructor(client) {
    this.client = client;
    this.call = null;
    this.el = null;
    client.calls.on('incoming', (call) => this.incoming(call));
  }

  /** Places a call to {user} or {enterprise, positions} and shows it; resolves with the Call. */
  async start(to, { label, patrol_id } = {}) {
    if (this.call) throw new Error('already in a call');
    const stream = await openStream();
    let call;
    try {
      call = await this.client.calls.invite(to, { stream, patrol_id });
    } catch (e) {
      stopStream(stream);
      toast(t('error', { why: e.message }), 'error');
      throw e;
    }
    this.show(call, label || '', stream);
    return call;
  }

  incoming(call) {
    if (this.call) {
      call.decline('busy').catch(() => {});
      return;
    }
    const who = call.from ? call.from.display_name || call.from.username : '';
    this.show(call, who, null);
  }

  show(call, label, stream) {
    this.call = call;
    const status = h('div.call-status', { 'data-test': 'call-status' });
    const remote = h('video.remote', { autoplay: true, playsinline: true, 'data-test': 'remote-video' });
    const local = h('video.local', { autoplay: true, playsinline: true, muted: true, 'data-test': 'local-video' });
    const controls = h('div.call-controls');
    const from = call.from || {};
    const card = h('div.ring-card', { 'data-test': 'ring-card' },
      h('div.ring-icon'),
      h('div.ring-name', label),
      call.direction === 'in' ? h('div.ring-sub', [from.org, from.position].filter(Boolean).join(' · ')) : null,
      call.patrol_id ? h('div.ring-sub', t('tab_patrol')) : null);
    this.el = h('div.call-overlay', { 'data-test': 'call-overlay', role: 'dialog', 'aria-label': t('in_call') },
      h('div.call-head', h('strong.call-peer', label), status),
      h('div.call-videos', remote, local, card),
      controls);
    document.body.append(this.el);

    let stopRing = call.direction === 'in' ? ring('incoming') : ring('ringback');
    const quiet = () => {
      stopRing();
      stopRing = () => {};
    };
    const setStatus = (text, state) => {
      status.textContent = text;
      status.dataset.state = state;
    };
    const showLocal = (s) => {
      local.srcObject = s;
      local.hidden = !s;
    };
    showLocal(stream);

    const inCallControls = () => {
      let micMuted = false;
      let camOff = false;
      const mute = h('button', { 'data-test': 'mute', onclick: () => {
        micMuted = !micMuted;
        call.setMuted('audio', micMuted);
        mute.textContent = micMuted ? t('unmute_mic') : t('mute_mic');
        mute.classList.toggle('on', micMuted);
      } }, t('mute_mic'));
      const cam = h('button', { 'data-test': 'camera-toggle', onclick: () => {
        camOff = !camOff;
        call.setMuted('video', camOff);
        cam.textContent = camOff ? t('camera_on') : t('camera_off');
        cam.classList.toggle('on', camOff);
      } }, t('camera_off'));
      const camSel = h('select', { 'data-test': 'camera-select', 'aria-label': t('camera') });
      const micSel = h('select', { 'data-test': 'mic-select', 'aria-label': t('microphone') });
      listDevices().then((d) => {
        fill(camSel, d.videoinput.map((x) => h('option', { value: x.id, selected: x.id === chosen('videoinput') }, x.label)));
        fill(micSel, d.audioinput.map((x) => h('option', { value: x.id, selected: x.id === chosen('audioinput') }, x.label)));
      });
      const swap = (kind, sel, devKind) => async () => {
        choose(devKind, sel.value);
        try {
          await call.replaceTrack(await openTrack(kind, sel.value));
        } catch (e) {
          toast(t('error', { why: e.message }), 'error');
        }
      };
      camSel.addEventListener('change', swap('video', camSel, 'videoinput'));
      micSel.addEventListener('change', swap('audio', micSel, 'audioinput'));
      fill(controls, mute, cam, camSel, micSel,
        h('button.danger', { 'data-test': 'hangup', onclick: () => call.hangup().catch(() => {}) }, t('hang_up')));
    };

    if (call.direction === 'in') {
      setStatus(t('incoming_call'), 'ringing');
      fill(controls,
        h('button.primary', { 'data-test': 'answer', onclick: async () => {
          quiet();
          setStatus(t('connecting_media'), 'connecting');
          const s = await openStream({ video: !call.media || call.media.video !== false });
          showLocal(s);
          inCallControls();
          try {
            await call.accept({ stream: s });
          } catch (e) {
            stopStream(s);
          }
        } }, t('answer')),
        h('button.danger', { 'data-test': 'decline', onclick: () => {
          quiet();
          call.decline().catch(() => {});
        } }, t('decline')));
    } else {
      setStatus(t('calling'), 'calling');
      inCallControls();
    }

    call.on('state', (s) => {
      if (s === 'ringing' && call.direction === 'out') setStatus(t('ringing'), 'ringing');
      if (s === 'connecting') {
        quiet();
        setStatus(t('connecting_media'), 'connecting');
      }
      if (s === 'active') setStatus(t('in_call'), 'active');
    });
    call.on('remote-stream', (s) => {
      remote.srcObject = s;
      card.hidden = true;
    });
    call.on('peer', ({ connected }) => setStatus(connected ? t('in_call') : t('peer_away'), connected ? 'active' : 'away'));
    call.on('ended', ({ reason }) => {
      quiet();
      setStatus(t('call_ended', { reason: t(`reason_${reason}`) }), 'ended');
      stopStream(call.localStream);
      fill(controls);
      const el = this.el;
      this.call = null;
      this.el = null;
      setTimeout(() => el.remove(), 1500);
    });
  }
}
