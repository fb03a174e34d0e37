import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HubClient } from '../../src/hub/client.js';
import { retryAfterMs } from '../../src/hub/http-message.js';
import { hubSettings } from '../../src/hub/settings.js';
import { NO_PROXY_ENV } from '../support/helpers.js';

describe('Retry-After (RFC 9110)', () => {
  const now = Date.parse('Wed, 02 Dec 2026 12:00:00 GMT');
  it.each([
    ['120', 120_000],
    [' 3 ', 3000],
    ['0', 0],
    ['Wed, 02 Dec 2026 12:00:30 GMT', 30_000],
    ['Wed, 02 Dec 2026 11:00:00 GMT', 0],
  ])('reads %j as %i ms', (value, ms) => {
    expect(retryAfterMs(value, now)).toBe(ms);
  });
  it.each([[null], [''], ['soon'], ['-1'], ['1.5'], ['2026-12-02T12:00:30Z']])('takes %j as unsaid (the client backs off on its own)', (value) => {
    expect(retryAfterMs(value, now)).toBeUndefined();
  });
});

describe('5xx and 429 without a usable Retry-After back off exponentially (issue 19)', () => {
  it.each([[undefined], ['soon']])('Retry-After %j: waits base, 2 x base, 4 x base between attempts, not nothing', async (header) => {
    const at: number[] = [];
    const server = createServer((_req, res) => {
      at.push(Date.now());
      res.writeHead(503, header === undefined ? {} : { 'Retry-After': header });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = new HubClient(hubSettings({ HF_ENDPOINT: endpoint, HF_HOME: '/nonexistent', ...NO_PROXY_ENV }), { retry: { attempts: 4, baseDelayMs: 40, maxDelayMs: 1000 } });
      await expect(client.resolveCommit('Org/x', 'main')).rejects.toThrow(/4 attempts/);
    } finally {
      server.close();
    }
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(gaps).toHaveLength(3);
    // Lower bounds only: a slow machine waits longer, never shorter.
    expect(gaps[0]).toBeGreaterThanOrEqual(35);
    expect(gaps[1]).toBeGreaterThanOrEqual(75);
    expect(gaps[2]).toBeGreaterThanOrEqual(155);
  });
});
