/**
 * Waits `ms`, or less when the run is interrupted meanwhile: between tries of a Hub request. Its own
 * module, so that the byte source of a Hub file does not load the client.
 */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
