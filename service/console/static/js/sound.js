// The alert sound: a short WebAudio beep, so no audio file is needed and nothing is fetched.

let context = null;

// Browsers allow audio only after a user gesture: call this from the click that turns sound on.
export function unlock() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return false;
  if (!context) context = new Ctx();
  if (context.state === "suspended") context.resume();
  return true;
}

export function beep(severity = "normal") {
  if (!context) return false;
  const pitch = { critical: 1320, major: 990, normal: 880, minor: 660 }[severity] || 880;
  const repeats = severity === "critical" ? 3 : severity === "major" ? 2 : 1;
  const start = context.currentTime;
  for (let i = 0; i < repeats; i += 1) {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.type = "sine";
    osc.frequency.value = pitch;
    const t = start + i * 0.25;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.3, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.18);
    osc.connect(gain).connect(context.destination);
    osc.start(t);
    osc.stop(t + 0.2);
  }
  return true;
}
