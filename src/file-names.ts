/**
 * Names that come from outside (a Hub listing, a manifest) and become file names here: each must be
 * one plain path component on every platform, so that no file system reads it as a path.
 */

/** Windows device names, which no folder can hold as files (with any extension); CONIN$ and CONOUT$ open the console. */
const WINDOWS_DEVICES = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;
const MAX_NAME_BYTES = 255;

/** Why `name` is not one plain file name on every platform; undefined when it is. */
export function unsafeNameReason(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return 'it is empty, "." or ".."';
  if (/[/\\]/.test(name)) return 'it holds a path separator';
  if (name.includes(':')) return 'it holds ":" (a drive or a stream on Windows)';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'it holds a control character';
  if (/[<>"|?*]/.test(name)) return 'it holds a character Windows refuses in names';
  if (/[. ]$/.test(name)) return 'it ends with "." or a space, which Windows drops';
  if (WINDOWS_DEVICES.test(name)) return 'it is a Windows device name';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `it is longer than ${MAX_NAME_BYTES} bytes`;
  return undefined;
}
