import { readFileSync } from 'node:fs';

/**
 * Peak resident memory of this process, in bytes. On Linux this reads VmHWM, because getrusage's
 * maxrss survives exec and would report a parent's peak for a freshly spawned process.
 */
export function peakRssBytes(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: fall through.
  }
  return process.resourceUsage().maxRSS * 1024;
}
