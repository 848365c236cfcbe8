import * as AsciinemaPlayer from 'asciinema-player';
import 'asciinema-player/dist/bundle/asciinema-player.css';
import { useEffect, useId, useRef, useState } from 'react';
import { clock } from '../format';

const SPEEDS = [0.5, 1, 2, 4, 8];

/**
 * A terminal recording (asciicast v2) in asciinema-player, with its own accessible controls: play
 * and pause, speed, a seek slider and 5-second steps. Idle pauses longer than 5 s are shortened.
 */
export function TerminalPlayer({ cast, title }: { cast: string; title: string }) {
  const host = useRef<HTMLDivElement>(null);
  const player = useRef<AsciinemaPlayer.Player | undefined>(undefined);
  const playingRef = useRef(false);
  const [speed, setSpeed] = useState(1);
  const [time, setTime] = useState(0);
  const [length, setLength] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [ready, setReady] = useState(false);
  const uid = useId();

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const startAt = player.current?.getCurrentTime() ?? 0;
    const autoPlay = playingRef.current;
    player.current?.dispose();
    el.replaceChildren();
    const p = AsciinemaPlayer.create({ data: cast }, el, { speed, startAt, autoPlay, preload: true, fit: 'width', idleTimeLimit: 5, controls: true, terminalFontSize: 'small' });
    player.current = p;
    setReady(false);
    const on = (v: boolean) => () => {
      playingRef.current = v;
      setPlaying(v);
    };
    p.addEventListener('playing', on(true));
    p.addEventListener('play', on(true));
    p.addEventListener('pause', on(false));
    p.addEventListener('ended', on(false));
    const tick = setInterval(() => {
      const d = p.getDuration();
      setTime(p.getCurrentTime());
      setLength(d ?? 0);
      setReady(d !== undefined);
    }, 200);
    return () => {
      clearInterval(tick);
    };
  }, [cast, speed]);

  useEffect(
    () => () => {
      player.current?.dispose();
      player.current = undefined;
    },
    [],
  );

  const seek = (t: number | 'end') => {
    const p = player.current;
    if (!p) return;
    const end = p.getDuration() ?? length;
    const to = t === 'end' ? end : Math.max(0, Math.min(end, t));
    void p.seek(to).then(() => setTime(p.getCurrentTime()));
  };
  const toggle = () => {
    const p = player.current;
    if (!p) return;
    void (playing ? p.pause() : p.play());
  };

  return (
    <figure className="terminal" aria-labelledby={`${uid}-cap`}>
      <figcaption id={`${uid}-cap`}>{title}</figcaption>
      <div className="player-controls" role="group" aria-label="Playback">
        <button type="button" className="primary small" onClick={toggle} disabled={!ready}>
          {playing ? 'Pause' : 'Play'}
        </button>
        <button type="button" className="secondary small" onClick={() => seek(0)} disabled={!ready}>
          Start
        </button>
        <button type="button" className="secondary small" onClick={() => seek(time - 5)} disabled={!ready}>
          Back 5 s
        </button>
        <button type="button" className="secondary small" onClick={() => seek(time + 5)} disabled={!ready}>
          Forward 5 s
        </button>
        <button type="button" className="secondary small" onClick={() => seek('end')} disabled={!ready}>
          End
        </button>
        <label htmlFor={`${uid}-seek`} className="visually-hidden">
          Position
        </label>
        <input
          id={`${uid}-seek`}
          className="seek"
          type="range"
          min={0}
          max={Math.max(length, 0.1)}
          step={0.1}
          value={Math.min(time, length)}
          aria-valuetext={`${clock(time)} of ${clock(length)}`}
          disabled={!ready}
          onChange={(e) => seek(Number(e.target.value))}
        />
        <span className="clock" aria-hidden="true">
          {clock(time)} / {clock(length)}
        </span>
        <label htmlFor={`${uid}-speed`}>Speed</label>
        <select id={`${uid}-speed`} value={speed} onChange={(e) => setSpeed(Number(e.target.value))}>
          {SPEEDS.map((s) => (
            <option key={s} value={s}>
              {s}×
            </option>
          ))}
        </select>
      </div>
      <div ref={host} className="player-host" />
    </figure>
  );
}
