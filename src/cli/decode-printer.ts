/** What `decode` prints: a line per file as it finishes, errors with their diagnosis, a summary. */
import { formatBytes, formatRate, formatSeconds, shortDigest } from '../format.js';
import type { DecodeEvent, DecodeReport, FileResult } from '../jobs/results.js';
import { errorLine, Reporter, sourceShort } from './reporter.js';

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

function mismatchError(r: FileResult, report: DecodeReport): string {
  const wanted = r.expected.map((e) => `${shortDigest(e.digest)} (${e.source})`).join(' or ');
  return `${r.name}: ${r.algorithm} ${r.actual} does not match ${report.verifiedAgainst?.label ?? 'the manifest'} (expected ${wanted}); the output was not kept. Check that the base folder is the exact conversion the XOR files were made against`;
}

function howChosen(how: string, detectedFrom: string | undefined): string {
  switch (how) {
    case 'detected':
      return `built-in manifest, recognised from ${detectedFrom} (override with --model/--manifest)`;
    case 'model':
      return 'built-in manifest';
    case 'xor-folder':
      return 'checksum list shipped in the XOR folder';
    default:
      return 'manifest file';
  }
}

export class DecodePrinter extends Reporter<DecodeReport> {
  private nameWidth = 0;

  handle = (event: DecodeEvent): void => {
    switch (event.type) {
      case 'plan': {
        const { plan } = event;
        this.nameWidth = Math.max(0, ...plan.files.map((f) => f.name.length), ...plan.missing.map((n) => n.length));
        const exp = plan.expectations;
        if (exp) this.say(`verifying against ${exp.manifest.label} (${howChosen(exp.how, exp.detectedFrom)})`);
        this.say(`decoding ${plan.files.length} files (${formatBytes(event.totalBytes)}) into ${plan.outputDir}`);
        this.startBars(event.totalBytes);
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

  protected printErrors(report: DecodeReport): void {
    for (const r of report.files) {
      if (r.status === 'mismatch') this.error(errorLine(mismatchError(r, report)));
      if (r.status === 'invalid') this.error(errorLine(`${r.name}: the decoded bytes cannot be right; the output was not kept`));
      if (r.baseCheck?.status === 'not-published' && r.status !== 'mismatch' && r.status !== 'invalid') {
        this.error(errorLine(`${r.name}: the base file is not the published conversion (--check-base)`));
      }
      for (const d of r.diagnosis) this.error(`  ${d.message}\n`);
      if (r.status === 'missing') {
        this.error(
          errorLine(`${r.name}: listed in ${report.verifiedAgainst?.label} but missing from the XOR folder ${report.xorDir}; download it (git lfs pull) and run again`),
        );
      }
    }
  }

  protected printSummary(report: DecodeReport): void {
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
}
