/**
 * The idle watchdog of one GET: it gives the connection up when nothing arrives for `idleMs` while
 * the body is wanted, and when a chunked body's trailers go on for longer than that however slowly
 * their bytes come (each byte would reset an idle clock: a trailer that never ends held a run).
 */
export interface Watched {
  /** When the network last delivered while the body was wanted (undefined: not waiting on the network). */
  readonly readingSince: number | undefined;
  /** When the body's trailers began, while they are being read. */
  readonly trailersSince: number | undefined;
  cancel(why: string): void;
}

export function watchIdle(get: Watched, idleMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    const now = Date.now();
    const since = get.readingSince;
    const trailers = get.trailersSince;
    if (since !== undefined && now - since > idleMs) get.cancel(`nothing received for ${Math.round(idleMs / 1000)} s`);
    else if (trailers !== undefined && now - trailers > idleMs) get.cancel(`the body's trailers did not end within ${Math.round(idleMs / 1000)} s`);
  }, Math.min(idleMs, 1000));
  timer.unref();
  return timer;
}
