/** What `encode` prints: a line per payload written, then where the checksum lists are. */
import { formatBytes, formatSeconds } from '../format.js';
import type { EncodeEvent, EncodeReport } from '../jobs/encode.js';
import { Reporter } from './reporter.js';

export class EncodePrinter extends Reporter<EncodeReport> {
  handle = (e: EncodeEvent): void => {
    if (e.type === 'warning') this.warn(e.message, true);
    if (e.type !== 'file-done') return;
    const f = e.file;
    this.say(`${f.action.padEnd(8)} ${f.name}  ${formatBytes(f.bytes)} -> ${formatBytes(f.payloadBytes)}  sha256 ${f.sha256.slice(0, 12)}…`);
  };

  protected printErrors(): void {}

  protected printSummary(report: EncodeReport): void {
    this.say(`done: ${report.files.length} files in ${formatSeconds(report.seconds)}; checksums in ${report.manifests.fineTuned}, ${report.manifests.base} and ${report.manifests.payloads}`);
  }
}
