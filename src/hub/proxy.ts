/**
 * Which proxy a connection to the Hub goes through, by the variables curl and huggingface_hub read:
 * HTTPS_PROXY for https addresses, HTTP_PROXY for http ones (the lower-case names first), and NO_PROXY
 * for the hosts reached directly (a comma list of host names and domain suffixes, or `*`; ports are
 * ignored). Proxies are spoken to in plain http: https addresses through a CONNECT tunnel, http ones
 * with absolute request targets; credentials in the proxy's address go in Proxy-Authorization.
 * ALL_PROXY is not read: it often names a SOCKS proxy, which is not spoken here.
 */
import { InputError } from '../errors.js';

export interface Proxy {
  url: URL;
  /** The variable it came from, for messages. */
  variable: string;
}

export interface ProxySettings {
  https: Proxy | undefined;
  http: Proxy | undefined;
  noProxy: string[];
}

function fromVariable(env: NodeJS.ProcessEnv, names: string[]): Proxy | undefined {
  const variable = names.find((n) => env[n]);
  if (!variable) return undefined;
  const text = env[variable]!.trim();
  let url: URL;
  try {
    // As curl and requests do, a bare host:port is an http proxy.
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new InputError(`${variable} is not a proxy address: ${JSON.stringify(text)}`, { hint: `set it to http://host:port, or unset it` });
  }
  if (url.protocol !== 'http:') {
    throw new InputError(`${variable} names a ${url.protocol}// proxy; metharme-xor speaks to proxies in plain http`, { hint: `set it to http://host:port, or unset it` });
  }
  return { url, variable };
}

export function proxySettings(env: NodeJS.ProcessEnv): ProxySettings {
  return {
    // The lower-case names first, as curl and Python's urllib read them.
    https: fromVariable(env, ['https_proxy', 'HTTPS_PROXY']),
    http: fromVariable(env, ['http_proxy', 'HTTP_PROXY']),
    noProxy: (env.no_proxy || env.NO_PROXY || '')
      .split(',')
      .map((entry) => entry.trim().toLowerCase().replace(/:\d+$/, '').replace(/^\*?\./, ''))
      .filter((entry) => entry !== ''),
  };
}

/** The proxy for a connection to `target`, or undefined to connect directly. */
export function proxyFor(settings: ProxySettings, target: URL): Proxy | undefined {
  const proxy = target.protocol === 'https:' ? settings.https : settings.http;
  if (!proxy) return undefined;
  const host = target.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const direct = settings.noProxy.some((entry) => entry === '*' || host === entry || host.endsWith(`.${entry}`));
  return direct ? undefined : proxy;
}

/** The Proxy-Authorization header for credentials in the proxy's address, if it has any. */
export function proxyAuthorization(proxy: Proxy): Record<string, string> {
  if (!proxy.url.username) return {};
  const credentials = `${decodeURIComponent(proxy.url.username)}:${decodeURIComponent(proxy.url.password)}`;
  return { 'Proxy-Authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}
