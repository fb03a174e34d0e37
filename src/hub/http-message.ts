/**
 * The text of HTTP/1.1 messages as a GET of a file needs it: the request, and the answer's head
 * (status, headers, and how its body is framed). The bytes are read by http-get.ts.
 */

/** The connection failed, or the server did not speak HTTP/1.1: worth trying again, mostly. */
export class ConnectionError extends Error {
  constructor(
    message: string,
    /** The system's or TLS's error code (ECONNRESET, CERT_HAS_EXPIRED, ...), when there was one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** How an answer's body ends, and how far along it the reading is. */
export type Framing =
  | { kind: 'length'; left: number }
  /** `trailer`: trailer bytes read so far; `since`: when the trailers began. */
  | { kind: 'chunked'; state: 'size' | 'data' | 'crlf' | 'trailers'; left: number; trailer: number; since: number }
  | { kind: 'close' }
  | { kind: 'done' };

/**
 * The GET request for `url`: identity content coding (the file's own bytes), one answer per
 * connection. `target` is what the request line names (the whole URL for a plain-http proxy).
 */
export function requestText(url: URL, extra: Record<string, string>, target = `${url.pathname}${url.search}`): string {
  // One line per header whatever the case of its name: the last value given wins.
  const headers = new Map<string, [string, string]>();
  for (const [name, value] of Object.entries({ Host: url.host, 'User-Agent': 'metharme-xor', ...extra, 'Accept-Encoding': 'identity', Connection: 'close' })) {
    headers.set(name.toLowerCase(), [name, value]);
  }
  const lines = [...headers.values()].map(([name, value]) => {
    // A line break in a value would start a header of its own.
    if (/[\r\n]/.test(name + value)) throw new ConnectionError(`a line break in the ${name} header`);
    return `${name}: ${value}\r\n`;
  });
  return `GET ${target} HTTP/1.1\r\n${lines.join('')}\r\n`;
}

/** An answer's head, without its final CRLFCRLF. */
export function parseHead(text: string, host: string): { status: number; headers: Headers; framing: Framing } {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
  if (!m) throw new ConnectionError(`${host} did not answer in HTTP/1.1 (${JSON.stringify(statusLine.slice(0, 40))})`);
  const status = Number(m[1]);
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ConnectionError(`${host} sent a malformed header line`);
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      throw new ConnectionError(`${host} sent a malformed header line`);
    }
  }
  return { status, headers, framing: framingOf(status, headers, host) };
}

/** How the body ends (RFC 9112, section 6.3). */
function framingOf(status: number, headers: Headers, host: string): Framing {
  if (status < 200 || status === 204 || status === 304) return { kind: 'done' };
  const codings = headers.get('transfer-encoding');
  if (codings !== null) {
    const list = codings.split(',').map((c) => c.trim().toLowerCase());
    if (list.at(-1) !== 'chunked' || list.some((c) => c !== 'chunked' && c !== 'identity')) {
      throw new ConnectionError(`${host} sent the body with transfer coding "${codings}", which is not read here`);
    }
    return { kind: 'chunked', state: 'size', left: 0, trailer: 0, since: 0 };
  }
  const length = headers.get('content-length');
  if (length !== null) {
    const values = new Set(length.split(',').map((v) => v.trim()));
    const value = values.size === 1 ? [...values][0]! : '';
    if (!/^\d+$/.test(value)) throw new ConnectionError(`${host} sent Content-Length "${length}"`);
    return Number(value) === 0 ? { kind: 'done' } : { kind: 'length', left: Number(value) };
  }
  return { kind: 'close' };
}

/**
 * Moves a chunked body's framing on by one line: a size line, the empty line after a chunk's data,
 * or a trailer. 'end' after the last trailer; a message when the line is not what it must be.
 */
export function chunkLine(f: Extract<Framing, { kind: 'chunked' }>, line: string): 'end' | string | undefined {
  if (f.state === 'size') {
    const size = /^([0-9a-fA-F]{1,13})[ \t]*(;.*)?$/.exec(line);
    if (!size) return 'a malformed chunk size line in the body';
    f.left = parseInt(size[1]!, 16);
    f.state = f.left === 0 ? 'trailers' : 'data';
    if (f.state === 'trailers') f.since = Date.now();
  } else if (f.state === 'crlf') {
    if (line !== '') return 'a chunk longer than its size line said';
    f.state = 'size';
  } else if (line === '') {
    return 'end';
  } else if ((f.trailer += line.length + 2) > MAX_TRAILER_BYTES) {
    return `trailers of more than ${MAX_TRAILER_BYTES >> 10} KiB after the body`;
  }
  return undefined;
}

/** Trailers carry a few checksums at most: a body that goes on with more has no end. */
const MAX_TRAILER_BYTES = 8 << 10;

/**
 * Retry-After (RFC 9110, section 10.2.3): delay-seconds or an HTTP-date, in milliseconds from `now`;
 * undefined when absent or unreadable (the caller then backs off on its own).
 */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
