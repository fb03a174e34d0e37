/**
 * Keeps a file being decoded from the Hub resumable even through kill -9: every few seconds the
 * decoded prefix whose writes have all completed is flushed to disk and its length recorded in the
 * state. A kill loses at most the bytes since the last record; a graceful stop loses none.
 */
import { DIRECT_ALIGN } from '../codec/direct-io.js';
import type { TempFile } from './temp-file.js';

export const CHECKPOINT_INTERVAL_MS = 2000;

export class Checkpoints {
  private written: number;
  private recorded: number;
  private saving: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly temp: TempFile,
    /** Records that the temporary output's first `bytes` are whole and flushed. */
    private readonly record: (bytes: number) => Promise<void>,
    /** Bytes already whole when this starts (a resumed file's kept part, already recorded). */
    start = 0,
    intervalMs = CHECKPOINT_INTERVAL_MS,
  ) {
    this.written = start;
    this.recorded = start;
    this.timer = setInterval(() => void this.checkpoint(), intervalMs);
    // A pending checkpoint must never keep the process alive.
    this.timer.unref();
  }

  /** The pipeline's contiguous written prefix grew to `bytes`. */
  advance(bytes: number): void {
    this.written = bytes;
  }

  /** Whole aligned blocks only: the next run's writes from there stay aligned for direct I/O. */
  private resumable(): number {
    return this.written - (this.written % DIRECT_ALIGN);
  }

  private checkpoint(): Promise<void> {
    const bytes = this.resumable();
    if (this.saving || bytes <= this.recorded) return this.saving ?? Promise.resolve();
    this.saving = (async () => {
      // The data first: a record must never promise bytes a power cut could take back.
      await this.temp.handle.datasync();
      await this.record(bytes);
      this.recorded = bytes;
    })()
      // A failed checkpoint costs only resumability; the decode itself reports real write errors.
      .catch(() => undefined)
      .finally(() => (this.saving = undefined));
    return this.saving;
  }

  /** Stops recording; `final`: records the whole prefix written so far first (an interrupted file). */
  async stop(options: { final: boolean }): Promise<void> {
    clearInterval(this.timer);
    await this.saving;
    if (options.final) await this.checkpoint();
  }
}
