/**
 * What every command's printer shares: the output mode, the bars' lifecycle, and where each kind of
 * line goes. Results go to stdout, warnings and errors to stderr, bars to stderr only when it is a
 * terminal, so `2>/dev/null`, `>file` and pipes all do what users expect.
 */
import { printable } from '../format.js';
import { Bars } from './bars.js';

export type ReportMode = 'tty' | 'plain' | 'quiet' | 'json';

export interface Streams {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

export const PROGRAM = 'metharme-xor';

/** CI=false and CI=0 are how CI systems and users say "not CI". */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.CI?.trim().toLowerCase();
  return value !== undefined && value !== '' && value !== 'false' && value !== '0';
}

export function chooseMode(options: { json?: boolean; quiet?: boolean }, err: Streams['err'], env: NodeJS.ProcessEnv = process.env): ReportMode {
  if (options.json) return 'json';
  if (options.quiet) return 'quiet';
  const capable = err.isTTY === true && env.TERM !== 'dumb' && !isCi(env);
  return capable ? 'tty' : 'plain';
}

export function errorLine(message: string): string {
  return `${PROGRAM}: error: ${printable(message)}\n`;
}

export abstract class Reporter<Report> {
  protected bars: Bars | undefined;

  constructor(
    protected readonly mode: ReportMode,
    protected readonly streams: Streams,
  ) {}

  protected startBars(totalBytes: number): void {
    if (this.mode === 'tty') this.bars = new Bars(this.streams.err, totalBytes);
  }

  /** A result line: stdout. Through the bars only when stdout is the same terminal they draw on. */
  protected say(line: string): void {
    if (this.mode === 'quiet' || this.mode === 'json') return;
    const text = `${printable(line)}\n`;
    if (this.bars && this.streams.out.isTTY) this.bars.log(text);
    else this.streams.out.write(text);
  }

  /** A warning: stderr, in every mode but --quiet, where only safety warnings are printed. */
  protected warn(line: string, safety = false): void {
    if (this.mode === 'quiet' && !safety) return;
    this.toErr(`${PROGRAM}: warning: ${printable(line)}\n`);
  }

  /** An error or diagnosis line: stderr, in every mode. */
  protected error(line: string): void {
    this.toErr(printable(line.replace(/\n$/, '')) + '\n');
  }

  private toErr(text: string): void {
    if (this.bars) this.bars.log(text);
    else this.streams.err.write(text);
  }

  protected stopBars(): void {
    this.bars?.stop();
    this.bars = undefined;
  }

  /** Prints the final report: errors first, then the JSON document or the summary line. */
  finish(report: Report): void {
    this.stopBars();
    this.printErrors(report);
    if (this.mode === 'json') this.streams.out.write(`${JSON.stringify(report, null, 2)}\n`);
    else this.printSummary(report);
  }

  protected abstract printErrors(report: Report): void;
  protected abstract printSummary(report: Report): void;

  abort(): void {
    this.stopBars();
  }
}

export function sourceShort(source: string | null): string {
  if (!source) return '';
  return source.length > 60 ? `${source.slice(0, 57)}...` : source;
}
