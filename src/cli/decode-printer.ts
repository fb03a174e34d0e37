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
      detail = `${algo} ${shortDigest(r.actual)} does not match the published digest; output not kept; cause: ${r.cause}`;
      break;
    case 'invalid':
      detail =
        r.cause === null
          ? 'its pickle cannot be read, so it cannot be proven harmless; output not kept'
          : `stopped at the first chunk: no digest is known and the decoded bytes lack the structure of the base; output not kept; cause: ${r.cause}`;
      break;
    case 'missing':
      detail = 'listed in the manifest, missing from the XOR folder';
      break;
    case 'unsafe':
      detail = r.matchedSource
        ? `${algo} ok, but its pickle could run code when loaded; output not kept`
        : 'its pickle could run code when loaded; output not kept';
      break;
    case 'not-started':
      detail = 'not started: an earlier file failed (--keep-going decodes every file)';
      break;
    default:
      detail = r.expected.length === 0 ? 'NOT VERIFIED (no published digest)' : 'NOT VERIFIED (--no-verify)';
  }
  const how = r.note && r.status !== 'skipped' && r.status !== 'not-started' ? ` [${r.note}]` : '';
  const base =
    r.baseCheck?.status === 'published' ? ' (base: published conversion)' : r.baseCheck?.status === 'not-published' ? ' (base: NOT the published conversion)' : '';
  return `${r.status.padEnd(10)} ${r.name.padEnd(nameWidth)}  ${size.padStart(8)}  ${detail}${how}${base}`;
}

function mismatchError(r: FileResult, label: string): string {
  const wanted = r.expected.map((e) => `${shortDigest(e.digest)} (${e.source})`).join(' or ');
  return `${r.name}: ${r.algorithm} ${r.actual} does not match ${label} (expected ${wanted}); the output was not kept (cause: ${r.cause})`;
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
  private label = 'the manifest';
  private xorDir = '';
  private chooser = '--model/--manifest';

  handle = (event: DecodeEvent): void => {
    switch (event.type) {
      case 'plan': {
        const { plan } = event;
        this.nameWidth = [...plan.files.map((f) => f.name), ...plan.missing].reduce((w, n) => Math.max(w, n.length), 0);
        const exp = plan.expectations;
        this.label = exp?.manifest.label ?? this.label;
        this.xorDir = plan.xorDir;
        if (plan.verb === 'rebuilding') this.chooser = '--as/--manifest';
        if (plan.source) this.say(`reading ${plan.xorDir} at commit ${plan.source.commit}`);
        if (plan.baseSource) this.say(`reading the base ${plan.baseDir} at commit ${plan.baseSource.commit}`);
        if (exp) this.say(`verifying against ${exp.manifest.label} (${howChosen(exp.how, exp.detectedFrom)})`);
        this.say(`${plan.verb ?? 'decoding'} ${plan.files.length} files (${formatBytes(event.totalBytes)}) into ${plan.outputDir}`);
        this.startBars(event.totalBytes);
        break;
      }
      case 'warning':
        this.warn(event.message, event.safety === true);
        break;
      case 'note':
        this.say(event.message);
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
      case 'gguf-done': {
        const g = event.gguf;
        if (!g.written) this.error(errorLine(`${g.path}: not written, as a shard did not go into it whole (see above)`));
        else {
          this.say(`wrote ${g.path} (${g.type}, ${g.tensors} tensors, ${formatBytes(g.bytes)})${g.verified ? ': every shard matched its published digest' : ''}`);
          if (!g.verified) this.warn(`${g.path}: NOT VERIFIED, as a shard that went into it had no published digest to match`, true);
        }
        break;
      }
      case 'file-done':
        this.say(decodeLine(event.result, this.nameWidth));
        // Causes and fixes at once, not after the remaining files: the user can act while it runs.
        this.printFileErrors(event.result);
        break;
    }
  };

  private printFileErrors(r: FileResult): void {
    if (r.status === 'mismatch') this.error(errorLine(mismatchError(r, this.label)));
    if (r.status === 'invalid' && r.cause !== null) {
      this.error(errorLine(`${r.name}: no digest is known and the decoded bytes lack the structure of the base file; the output was not kept (cause: ${r.cause})`));
    }
    if (r.status === 'unsafe' || (r.status === 'invalid' && r.cause === null)) this.error(errorLine(`${r.name}: NOT SAFE TO LOAD; the output was not kept`));
    if (r.baseCheck?.status === 'not-published' && r.status !== 'mismatch' && r.status !== 'invalid') {
      this.error(errorLine(`${r.name}: the base file is not the published one (--check-base)`));
    }
    for (const d of r.diagnosis) this.error(`  ${d.message}\n`);
    if (r.status === 'missing') {
      this.error(errorLine(`${r.name}: listed in ${this.label} but missing from the XOR folder ${this.xorDir}; download it (git lfs pull) and run again`));
    }
  }

  protected printErrors(report: DecodeReport): void {
    if (report.strict && report.totals.notVerified > 0) {
      this.error(errorLine(`--strict: ${report.totals.notVerified} of ${report.totals.files} files could not be verified (no published digest, or --no-verify)`));
    }
    const notStarted = report.files.filter((f) => f.status === 'not-started');
    if (notStarted.length > 0) {
      this.error(
        errorLine(`${notStarted.length} ${notStarted.length === 1 ? "file" : "files"} not started, as a file failed for a reason that would repeat for the others: fix the cause above and run again (--keep-going decodes every file)`),
      );
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
    if (t.notStarted) parts.push(`${t.notStarted} NOT STARTED`);
    if (t.unsafe) parts.push(`${t.unsafe} UNSAFE`);
    if (t.unverified) parts.push(`${t.unverified} not verified`);
    if (report.strict && t.notVerified) parts.push(`${t.notVerified} NOT VERIFIED, which --strict fails`);
    const against = report.verifiedAgainst ? ` against ${report.verifiedAgainst.label}` : '';
    this.say(
      `${report.exitCode === 0 ? 'done' : 'FAILED'}: ${t.files} files, ${formatBytes(t.bytes)} in ${formatSeconds(t.seconds)} (${formatRate(t.bytes, t.seconds)}): ${parts.join(', ')}${against}`,
    );
    if (!report.verifiedAgainst && t.files > 0) {
      this.warn(`nothing was verified: compare the outputs with the published checksums yourself, or pass ${this.chooser} next time`, true);
    }
  }
}
