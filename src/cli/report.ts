/**
 * What the user sees. Four modes: progress bars on a TTY (stderr), one plain line per finished file
 * when not a TTY, --quiet (errors only) and --json (one document on stdout). Results go to stdout,
 * warnings and errors to stderr, so `2>/dev/null` and pipes both do what users expect.
 */
import cliProgress from 'cli-progress';
import type { DecodeEvent, DecodeReport, FileResult } from '../jobs/decode.js';
import { formatBytes, formatRate, formatSeconds, shortDigest } from '../format.js';
import type { VerifyEvent, VerifyFileResult, VerifyReport } from '../jobs/verify.js';

export type ReportMode = 'tty' | 'plain' | 'quiet' | 'json';

export interface Streams {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

export function chooseMode(options: { json?: boolean; quiet?: boolean }, err: Streams['err']): ReportMode {
  if (options.json) return 'json';
  if (options.quiet) return 'quiet';
  return err.isTTY && !process.env.CI ? 'tty' : 'plain';
}

export const PROGRAM = 'metharme-xor';

export function errorLine(message: string): string {
  return `${PROGRAM}: error: ${message}\n`;
}

function sourceShort(source: string | null): string {
  if (!source) return '';
  return source.length > 60 ? `${source.slice(0, 57)}...` : source;
}

/** Progress bars: overall and current file, with bytes, percentage, throughput and ETA. */
class Bars {
  private readonly multi: cliProgress.MultiBar;
  private readonly overall: cliProgress.SingleBar;
  private current: cliProgress.SingleBar | undefined;
  private done = 0;
  private fileDone = 0;
  private counts = true;

  constructor(stream: NodeJS.WritableStream, total: number) {
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

export function decodeLine(r: FileResult, nameWidth = 0): string {
  const size = r.bytes === null ? '' : formatBytes(r.bytes);
  const algo = r.algorithm ?? '';
  let detail: string;
  switch (r.status) {
    case 'verified':
      detail = `${algo} ok (${sourceShort(r.matchedSource)})`;
      break;
    case 'skipped':
      detail = r.actual
        ? `already present, ${algo} ok (${sourceShort(r.matchedSource)})`
        : 'already present (decoded by an earlier run); NOT VERIFIED (no published digest)';
      break;
    case 'mismatch':
      detail = `${algo} ${shortDigest(r.actual)} does not match the published digest; output not kept`;
      break;
    case 'invalid':
      detail = 'stopped at the first chunk: the decoded bytes cannot be right; output not kept';
      break;
    case 'missing':
      detail = 'listed in the manifest, missing from the XOR folder';
      break;
    default:
      detail = r.expected.length === 0 ? 'NOT VERIFIED (no published digest)' : 'NOT VERIFIED (--no-verify)';
  }
  const how = r.note && r.status !== 'skipped' ? ` [${r.note}]` : '';
  const base =
    r.baseCheck?.status === 'published' ? ' (base: published conversion)' : r.baseCheck?.status === 'not-published' ? ' (base: NOT the published conversion)' : '';
  return `${r.status.padEnd(10)} ${r.name.padEnd(nameWidth)}  ${size.padStart(8)}  ${detail}${how}${base}`;
}

function mismatchError(r: FileResult, report: { verifiedAgainst: DecodeReport['verifiedAgainst'] }): string {
  const wanted = r.expected.map((e) => `${shortDigest(e.digest)} (${e.source})`).join(' or ');
  return `${r.name}: ${r.algorithm} ${r.actual} does not match ${report.verifiedAgainst?.label ?? 'the manifest'} (expected ${wanted}); the output was not kept. Check that the base folder is the exact conversion the XOR files were made against`;
}

export class DecodeReporter {
  private bars: Bars | undefined;
  private nameWidth = 0;

  constructor(
    private readonly mode: ReportMode,
    private readonly streams: Streams,
  ) {}

  private say(line: string): void {
    if (this.mode === 'quiet' || this.mode === 'json') return;
    if (this.bars) this.bars.log(`${line}\n`);
    else this.streams.out.write(`${line}\n`);
  }

  private warn(line: string): void {
    // --json keeps stdout for the document; warnings still reach a human on stderr.
    if (this.mode === 'quiet') return;
    if (this.bars) this.bars.log(`${PROGRAM}: warning: ${line}\n`);
    else this.streams.err.write(`${PROGRAM}: warning: ${line}\n`);
  }

  handle = (event: DecodeEvent): void => {
    switch (event.type) {
      case 'plan': {
        const { plan } = event;
        this.nameWidth = Math.max(0, ...plan.files.map((f) => f.name.length), ...plan.missing.map((n) => n.length));
        const exp = plan.expectations;
        if (exp) {
          const how =
            exp.how === 'detected'
              ? `built-in manifest, recognised from ${exp.detectedFrom} (override with --model/--manifest)`
              : exp.how === 'model'
                ? 'built-in manifest'
                : exp.how === 'xor-folder'
                  ? 'checksum list shipped in the XOR folder'
                  : 'manifest file';
          this.say(`verifying against ${exp.manifest.label} (${how})`);
        }
        this.say(`decoding ${plan.files.length} files (${formatBytes(event.totalBytes)}) into ${plan.outputDir}`);
        if (this.mode === 'tty') this.bars = new Bars(this.streams.err, event.totalBytes);
        break;
      }
      case 'warning':
        this.warn(event.message);
        break;
      case 'file-start': {
        const label =
          event.phase === 'check-existing' ? `checking ${event.name}` : event.phase === 'diagnose' ? `hashing base ${event.name}` : event.name;
        this.bars?.startFile(label, event.bytes, event.phase !== 'diagnose');
        break;
      }
      case 'progress':
        this.bars?.progress(event.bytes);
        break;
      case 'file-done':
        this.say(decodeLine(event.result, this.nameWidth));
        break;
    }
  };

  finish(report: DecodeReport): void {
    this.bars?.stop();
    this.bars = undefined;
    for (const r of report.files) {
      if (r.status === 'mismatch') this.streams.err.write(errorLine(mismatchError(r, report)));
      if (r.status === 'invalid') this.streams.err.write(errorLine(`${r.name}: the decoded bytes cannot be right; the output was not kept`));
      if (r.baseCheck?.status === 'not-published' && r.status !== 'mismatch' && r.status !== 'invalid') {
        this.streams.err.write(errorLine(`${r.name}: the base file is not the published conversion (--check-base)`));
      }
      for (const d of r.diagnosis) this.streams.err.write(`  ${d.message}\n`);
      if (r.status === 'missing') {
        this.streams.err.write(
          errorLine(`${r.name}: listed in ${report.verifiedAgainst?.label} but missing from the XOR folder ${report.xorDir}; download it (git lfs pull) and run again`),
        );
      }
    }
    if (this.mode === 'json') {
      this.streams.out.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const t = report.totals;
    const parts = [`${t.verified} verified`];
    if (t.skipped) parts.push(`${t.skipped} already present`);
    if (t.mismatch) parts.push(`${t.mismatch} MISMATCHED`);
    if (t.invalid) parts.push(`${t.invalid} INVALID`);
    if (t.badBase) parts.push(`${t.badBase} with a base that is NOT the published conversion`);
    if (t.missing) parts.push(`${t.missing} MISSING`);
    if (t.unverified) parts.push(`${t.unverified} not verified`);
    const against = report.verifiedAgainst ? ` against ${report.verifiedAgainst.label}` : '';
    this.say(
      `${report.exitCode === 0 ? 'done' : 'FAILED'}: ${t.files} files, ${formatBytes(t.bytes)} in ${formatSeconds(t.seconds)} (${formatRate(t.bytes, t.seconds)}): ${parts.join(', ')}${against}`,
    );
    if (!report.verifiedAgainst && t.files > 0) {
      this.warn('nothing was verified: compare the outputs with the published checksums yourself, or pass --model/--manifest next time');
    }
  }

  abort(): void {
    this.bars?.stop();
    this.bars = undefined;
  }
}

export function verifyLine(r: VerifyFileResult): string {
  const size = r.bytes === null ? '' : formatBytes(r.bytes);
  const detail =
    r.status === 'ok'
      ? `${r.algorithm} ok (${sourceShort(r.matchedSource)})`
      : r.status === 'missing'
        ? 'file not found'
        : `${r.algorithm} ${shortDigest(r.actual)} does not match any published digest`;
  return `${r.status.padEnd(9)} ${r.name}  ${size}  ${detail}`;
}

export class VerifyReporter {
  private bars: Bars | undefined;

  constructor(
    private readonly mode: ReportMode,
    private readonly streams: Streams,
    /** What to tell the user to do about a mismatched file. */
    private readonly mismatchHint: string,
  ) {}

  private say(line: string): void {
    if (this.mode === 'quiet' || this.mode === 'json') return;
    if (this.bars) this.bars.log(`${line}\n`);
    else this.streams.out.write(`${line}\n`);
  }

  handle = (event: VerifyEvent): void => {
    switch (event.type) {
      case 'start':
        this.say(`verifying ${event.files} files against ${event.manifest.label}`);
        if (this.mode === 'tty') this.bars = new Bars(this.streams.err, event.bytes);
        break;
      case 'file-start':
        this.bars?.startFile(`checking ${event.name}`, event.bytes);
        break;
      case 'progress':
        this.bars?.progress(event.bytes);
        break;
      case 'file-done':
        this.say(verifyLine(event.result));
        break;
    }
  };

  finish(report: VerifyReport): void {
    this.bars?.stop();
    this.bars = undefined;
    for (const r of report.files) {
      if (r.status === 'mismatch') {
        this.streams.err.write(errorLine(`${r.name}: ${r.algorithm} ${r.actual} does not match ${report.manifest.label}; ${this.mismatchHint}`));
      } else if (r.status === 'missing') {
        this.streams.err.write(errorLine(`${r.name}: missing from ${report.dir}; decode or download it`));
      }
      for (const d of r.diagnosis) this.streams.err.write(`  ${d.message}\n`);
    }
    if (this.mode === 'json') {
      this.streams.out.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const t = report.totals;
    this.say(
      `${report.exitCode === 0 ? 'ok' : 'FAILED'}: ${t.ok}/${t.files} files match ${report.manifest.label}` +
        (t.mismatch ? `, ${t.mismatch} mismatched` : '') +
        (t.missing ? `, ${t.missing} missing` : '') +
        ` (${formatBytes(t.bytes)} in ${formatSeconds(t.seconds)})`,
    );
  }

  abort(): void {
    this.bars?.stop();
    this.bars = undefined;
  }
}
