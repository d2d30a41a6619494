// Camera, microphone and the ringtone. The chosen devices are remembered
// in localStorage; the ringtone is synthesised with Web Audio, so no sound
// file is fetched.

const KEY = { videoinput: 'yjt.camera', audioinput: 'yjt.mic' };

/** The cameras and microphones the browser offers: {videoinput: [...], audioinput: [...]}. */
export async function listDevices() {
  const out = { videoinput: [], audioinput: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return out;
  for (const d of await navigator.mediaDevices.enumerateDevices()) {
    if (out[d.kind]) out[d.kind].push({ id: d.deviceId, label: d.label || d.kind });
  }
  return out;
}

export function chosen(kind) {
  return localStorage.getItem(KEY[kind]) || '';
}

export function choose(kind, id) {
  localStorage.setItem(KEY[kind], id);
}

/**
 * A local stream with the chosen camera and microphone (video false: voice
 * only). Resolves null when the browser gives none (no device, refused):
 * the call then goes on receive-only.
 */
export async function openStream({ video = true } = {}) {
  if (!navigator.mediaDevices) return null;
  const cam = chosen('videoinput');
  const mic = chosen('audioinput');
  const constraints = {
    audio: mic ? { deviceId: { ideal: mic } } : true,
    video: video ? (cam ? { deviceId: { ideal: cam } } : { width: { ideal: 640 }, height: { ideal: 480 } }) : false,
  };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (e) {
    console.warn('getUserMedia', e);
    return null;
  }
}

/** One new track of a kind ('video' or 'audio') from a given device. */
export async function openTrack(kind, deviceId) {
  const s = await navigator.mediaDevices.getUserMedia({ [kind]: { deviceId: { exact: deviceId } } });
  return s.getTracks()[0];
}

export function stopStream(stream) {
  if (stream) for (const tr of stream.getTracks()) tr.stop();
}

/** Starts a ring (incoming: two-tone; ringback: one tone); returns stop(). */
export function ring(kind = 'incoming') {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return () => {};
  let ctx;
  try {
    ctx = new AC();
  } catch {
    return () => {};
  }
  const gain = ctx.createGain();
  gain.gain.value = 0;
  gain.connect(ctx.destination);
  const freqs = kind === 'incoming' ? [880, 660] : [440];
  const oscs = freqs.map((f) => {
    const o = ctx.createOscillator();
    o.frequency.value = f;
    o.connect(gain);
    o.start();
    return o;
  });
  // on 1 s, off 2 s (incoming: on 0.4 s twice)
  const pattern = kind === 'incoming' ? [[0, 0.4], [0.6, 1.0]] : [[0, 1.0]];
  const period = 3;
  let t0 = ctx.currentTime;
  const schedule = () => {
    for (const [a, b] of pattern) {
      gain.gain.setValueAtTime(0.15, t0 + a);
      gain.gain.setValueAtTime(0, t0 + b);
    }
    t0 += period;
  };
  schedule();
  const timer = setInterval(schedule, period * 1000);
  return () => {
    clearInterval(timer);
    for (const o of oscs) o.stop();
    ctx.close().catch(() => {});
  };
}
