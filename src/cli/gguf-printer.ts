/** What `gguf` prints: its warnings as they come, then the file written. */
import { formatBytes } from '../format.js';
import type { GgufReport } from '../jobs/gguf.js';
import { Reporter } from './reporter.js';

export class GgufPrinter extends Reporter<GgufReport> {
  handle = (e: { type: 'note' | 'warning'; message: string }): void => {
    if (e.type === 'warning') this.warn(e.message);
    else this.say(e.message);
  };

  protected printErrors(): void {}

  protected printSummary(report: GgufReport): void {
    this.say(`wrote ${report.path} (${report.type}, ${report.tensors} tensors, ${formatBytes(report.bytes)}), with the Metharme chat template`);
  }
}
