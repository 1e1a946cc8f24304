/**
 * printf's `%gr`: GFP flags by name, from the running kernel's own table (the `__print_flags(gfp_flags, ...)`
 * of the kmem:kmalloc tracepoint format), printed the way the kernel's trace output prints them.
 */
import { readFileSync } from 'node:fs';

const FORMATS = [
  '/sys/kernel/tracing/events/kmem/kmalloc/format',
  '/sys/kernel/debug/tracing/events/kmem/kmalloc/format',
];

let table: { mask: bigint; name: string }[] | undefined;

/** The kernel's GFP flag table, most specific combinations first; empty when tracefs is not readable. */
export function gfpTable(): { mask: bigint; name: string }[] {
  if (table) return table;
  table = [];
  for (const path of FORMATS) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    table = parseGfpTable(text);
    if (table.length > 0) break;
  }
  return table;
}

/** The `{mask, "NAME"}` pairs of the gfp_flags `__print_flags` in a tracepoint format. */
export function parseGfpTable(format: string): { mask: bigint; name: string }[] {
  const start = format.indexOf('__print_flags(REC->gfp_flags, "|", ');
  if (start < 0) return [];
  const out: { mask: bigint; name: string }[] = [];
  const re = /\{\(\s*unsigned long\)(.*?),\s*"([A-Za-z0-9_]+)"\}/g;
  re.lastIndex = start;
  for (let m = re.exec(format); m; m = re.exec(format)) {
    const mask = evalMask(m[1] as string);
    if (mask === undefined) continue;
    out.push({ mask, name: m[2] as string });
    // The list ends with the closing parenthesis of __print_flags.
    if (format.slice(re.lastIndex).trimStart().startsWith(')')) break;
  }
  return out;
}

/** Evaluates the C constant expressions of those masks: casts, 1UL, <<, |, &, ~, parentheses. */
function evalMask(expr: string): bigint | undefined {
  const src = expr
    .replace(/\(\s*(?:gfp_t|unsigned long|unsigned int|int)\s*\)/g, ' ')
    .replace(/(\d+)U?L*\b/g, '$1');
  const tokens = src.match(/\d+|<<|[|&~()]/g) ?? [];
  let i = 0;
  const primary = (): bigint => {
    const t = tokens[i++];
    if (t === '(') {
      const v = or();
      i++; // ')'
      return v;
    }
    if (t === '~') return BigInt.asUintN(64, ~primary());
    if (t === undefined || !/^\d+$/.test(t)) throw new Error('bad mask');
    return BigInt(t);
  };
  const shift = (): bigint => {
    let v = primary();
    while (tokens[i] === '<<') {
      i++;
      v = BigInt.asUintN(64, v << primary());
    }
    return v;
  };
  const and = (): bigint => {
    let v = shift();
    while (tokens[i] === '&') {
      i++;
      v &= shift();
    }
    return v;
  };
  const or = (): bigint => {
    let v = and();
    while (tokens[i] === '|') {
      i++;
      v |= and();
    }
    return v;
  };
  try {
    const v = or();
    return i === tokens.length ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Flags as the kernel's trace output prints them: `GFP_KERNEL|__GFP_ZERO`, unknown bits in hex. */
export function gfpFlagNames(flags: bigint, names = gfpTable()): string {
  let rest = BigInt.asUintN(64, flags);
  if (rest === 0n) return 'none';
  const parts: string[] = [];
  for (const { mask, name } of names) {
    if (mask === 0n || (rest & mask) !== mask) continue;
    parts.push(name);
    rest &= ~mask;
  }
  if (rest !== 0n) parts.push(`0x${rest.toString(16)}`);
  return parts.join('|');
}
