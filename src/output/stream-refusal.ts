/**
 * Why a decoded stream could not be converted, kept instead of thrown: a corrupt payload's stream need
 * not parse, and only its digest may say whether the file was wrong or merely unconvertible.
 */
import { asError } from '../errors.js';

export class StreamRefusal {
  /** The first failure; once set, nothing more is attempted. */
  error: Error | undefined;

  /** Runs `step` unless a step failed before; a failure is kept, not thrown. */
  attempt(step: () => void): void {
    if (this.error) return;
    try {
      step();
    } catch (err) {
      this.error = asError(err);
    }
  }
}
