/** What `verify` and `check-base` print: a line per file, errors with their diagnosis, a summary. */
import { formatBytes, formatSeconds, shortDigest } from '../format.js';
import type { VerifyEvent, VerifyFileResult, VerifyReport } from '../jobs/verify.js';
import { errorLine, Reporter, sourceShort, type ReportMode, type Streams } from './reporter.js';

export function verifyLine(r: VerifyFileResult): string {
  const size = r.bytes === null ? '' : formatBytes(r.bytes);
  const details: Partial<Record<VerifyFileResult['status'], string>> = {
    verified: `${r.algorithm} ok (${sourceShort(r.matchedSource)})`,
    missing: 'file not found',
    unverified: 'NOT VERIFIED: the manifest does not list it (--strict)',
    unsafe: `${r.algorithm} ok, but its pickle could run code when loaded`,
    invalid: `${r.algorithm} ok, but its pickle cannot be read`,
  };
  const detail = details[r.status] ?? `${r.algorithm} ${shortDigest(r.actual)} does not match any published digest`;
  return `${r.status.padEnd(9)} ${r.name}  ${size}  ${detail}`;
}

export class VerifyPrinter extends Reporter<VerifyReport> {
  constructor(
    mode: ReportMode,
    streams: Streams,
    /** What to tell the user to do about a mismatched file. */
    private readonly mismatchHint: string,
    /** What to do about a missing file: decode it, for outputs; for a base, where it comes from. */
    private readonly missingHint = 'decode or download it',
  ) {
    super(mode, streams);
  }

  handle = (event: VerifyEvent): void => {
    switch (event.type) {
      case 'start':
        this.say(`verifying ${event.files} files against ${event.manifest.label}`);
        this.startBars(event.bytes);
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

  protected printErrors(report: VerifyReport): void {
    for (const r of report.files) {
      if (r.status === 'mismatch') {
        this.error(errorLine(`${r.name}: ${r.algorithm} ${r.actual} does not match ${report.manifest.label}; ${this.mismatchHint}`));
      } else if (r.status === 'missing') {
        this.error(errorLine(`${r.name}: missing from ${report.dir}; ${this.missingHint}`));
      } else if (r.status === 'unverified') {
        this.error(errorLine(`${r.name}: not listed in ${report.manifest.label}, so it cannot be verified (--strict)`));
      }
      for (const d of r.diagnosis) this.error(`  ${d.message}\n`);
    }
  }

  protected printSummary(report: VerifyReport): void {
    const t = report.totals;
    this.say(
      `${report.exitCode === 0 ? 'ok' : 'FAILED'}: ${t.verified}/${t.files} files match ${report.manifest.label}` +
        (t.mismatch ? `, ${t.mismatch} mismatched` : '') +
        (t.missing ? `, ${t.missing} missing` : '') +
        (t.unverified ? `, ${t.unverified} not verified` : '') +
        (t.unsafe ? `, ${t.unsafe} UNSAFE to load` : '') +
        (t.files === 0 ? ' (no file was verified)' : '') +
        ` (${formatBytes(t.bytes)} in ${formatSeconds(t.seconds)})`,
    );
  }
}
