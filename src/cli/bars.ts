/** Progress bars on stderr: overall and current file, with bytes, percentage, throughput and ETA. */
import { createRequire } from 'node:module';
import type * as CliProgress from 'cli-progress';
import { formatBytes, formatRate, formatSeconds } from '../format.js';

// Loaded when bars are first drawn (on a terminal): runs without them, as in CI, start sooner.
let loaded: typeof CliProgress | undefined;
const cliProgressModule = () => (loaded ??= createRequire(import.meta.url)('cli-progress') as typeof CliProgress);

/** Progress bars: overall and current file, with bytes, percentage, throughput and ETA. */
export class Bars {
  private readonly multi: CliProgress.MultiBar;
  private readonly overall: CliProgress.SingleBar;
  private current: CliProgress.SingleBar | undefined;
  private done = 0;
  private fileDone = 0;
  private counts = true;

  constructor(stream: NodeJS.WritableStream, total: number) {
    const cliProgress = cliProgressModule();
    this.multi = new cliProgress.MultiBar(
      {
        stream: stream as NodeJS.WriteStream,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 24,
        etaBuffer: 50,
        fps: 8,
        // Our own signal handling must decide how the run ends, not the progress bar library.
        gracefulExit: false,
        format: (options, params, payload: { label: string }) => {
          const bar = cliProgress.Format.BarFormat(params.progress, options);
          const elapsed = (Date.now() - params.startTime) / 1000;
          const pct = Math.floor(params.progress * 100);
          // ETA from the average rate so far: steadier than cli-progress's rounded window estimate.
          const eta = params.value > 0 ? ((params.total - params.value) * elapsed) / params.value : NaN;
          return `${bar} ${String(pct).padStart(3)}% ${payload.label.padEnd(34).slice(0, 34)} ${formatBytes(params.value)}/${formatBytes(params.total)} ${formatRate(params.value, elapsed)} ETA ${formatSeconds(eta)}`;
        },
      },
      cliProgress.Presets.shades_classic,
    );
    this.overall = this.multi.create(Math.max(total, 1), 0, { label: 'total' });
  }

  /** `counts`: whether the file's bytes are part of the overall total (not for re-reads). */
  startFile(label: string, bytes: number, counts = true): void {
    this.current?.stop();
    if (this.current) this.multi.remove(this.current);
    this.fileDone = 0;
    this.counts = counts;
    this.current = this.multi.create(Math.max(bytes, 1), 0, { label });
  }

  progress(bytes: number): void {
    this.fileDone += bytes;
    if (this.counts) this.done += bytes;
    this.current?.update(this.fileDone);
    this.overall.update(this.done);
  }

  log(line: string): void {
    this.multi.log(line);
    // Redraw now: cli-progress only flushes logged lines on its next frame, which stop() skips.
    this.multi.update();
  }

  stop(): void {
    this.multi.stop();
  }
}

