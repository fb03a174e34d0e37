/**
 * Checking what library callers pass: a wrong type is an InputError (exit 2) naming the option,
 * never a bare TypeError deep inside, and never a silent default (jobs: NaN decoded nothing).
 */
import { availableParallelism } from 'node:os';
import { InputError } from '../errors.js';

type Kind = 'string' | 'boolean' | 'jobs' | 'signal' | 'function';

function fail(name: string, expected: string, value: unknown): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'number' && !Number.isFinite(value) ? String(value) : typeof value;
  throw new InputError(`option "${name}" must be ${expected}, not ${got}`, { hint: 'fix the options passed to the library call' });
}

function check(name: string, value: unknown, kind: Kind): void {
  switch (kind) {
    case 'string':
      if (typeof value !== 'string' || value === '') fail(name, 'a non-empty string', value);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail(name, 'true or false', value);
      return;
    case 'jobs':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 64) fail(name, 'a whole number from 1 to 64', value);
      return;
    case 'signal':
      if (!(value instanceof AbortSignal)) fail(name, 'an AbortSignal', value);
      return;
    case 'function':
      if (typeof value !== 'function') fail(name, 'a function', value);
  }
}

/** `required` options must be present; `optional` ones may be undefined. */
export function checkOptions(
  options: unknown,
  required: Record<string, Kind>,
  optional: Record<string, Kind>,
): void {
  if (typeof options !== 'object' || options === null) fail('options', 'an object', options);
  const o = options as Record<string, unknown>;
  for (const [name, kind] of Object.entries(required)) check(name, o[name], kind);
  for (const [name, kind] of Object.entries(optional)) if (o[name] !== undefined) check(name, o[name], kind);
}

/** Options every job takes. */
export const COMMON_OPTIONS = { signal: 'signal', onEvent: 'function' } as const;

/** Files decoded at once when the caller does not say. */
export function defaultJobs(): number {
  // Each job keeps one core busy hashing and another on I/O and XOR.
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
}
