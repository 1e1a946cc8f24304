/**
 * Hex byte text, as users and the bpf_conformance suite write it: "aa bb", "aabb", "0xaa, 0xbb", with `#`
 * comments to the end of a line. One parser for the CLI's --mem/--data options and the conformance runner.
 */
import { TsbpfError } from './errors.js';

/** Parses hex bytes; `what` names the input in the error (e.g. '--mem', 'mem section'). */
export function parseHexBytes(text: string, what: string): Uint8Array {
  const tokens = text
    .replace(/#.*$/gm, '')
    .trim()
    .split(/[\s,]+/)
    .filter((t) => t.length > 0)
    .map((t) => t.replace(/^0x/i, ''));
  // Single digits are whole bytes ("0 1 ff"); longer tokens are runs of bytes ("0001ff").
  const joined = tokens.every((t) => t.length <= 2)
    ? tokens.map((t) => t.padStart(2, '0')).join('')
    : tokens.join('');
  if (joined.length % 2 !== 0 || /[^0-9a-f]/i.test(joined)) {
    const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
    throw new TsbpfError('usage', `${what} is not hexadecimal bytes: '${shown}'`);
  }
  const out = new Uint8Array(joined.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(joined.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array, sep = ' '): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(sep);
}
