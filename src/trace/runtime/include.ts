/**
 * The part of C preprocessing bpftrace scripts lean on without a C compiler: integer macros. bpftrace hands
 * `#include <errno.h>` (or `--include errno.h`, or a `#define` in the script) to clang, so a script can say
 * `EPERM`; tsbpf has no clang, so it reads the headers itself (following nested #includes, -I directories
 * first) and turns each integer `#define` the script uses into a 0-parameter bpftrace macro, which the
 * front end expands like any other. Conditionals are not evaluated: the first definition of a name wins,
 * which is what the headers' plain constants (errno values, flags, sizes) need.
 */
import { existsSync, readFileSync } from 'node:fs';
import { arch, release } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';

/** An #include naming no file on the search path: clang's fatal error, as bpftrace shows it. */
export class HeaderNotFound extends Error {}

export interface IncludeOptions {
  /** `-I DIR`: searched before the system directories. */
  dirs?: readonly string[];
  /** `--include FILE`: headers included before the script. */
  files?: readonly string[];
  /** Directory of the script, searched first for `#include "x"`. */
  scriptDir?: string;
}

/**
 * The directories searched after -I, most specific first: the running kernel's headers when they are
 * installed (bpftrace adds them to clang's path), then the system's.
 */
function systemDirs(): string[] {
  const machine = arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : arch();
  const karch = machine === 'x86_64' ? 'x86' : machine === 'aarch64' ? 'arm64' : machine;
  const kernel = [`/lib/modules/${release()}/build`, `/lib/modules/${release()}/source`].flatMap((k) => [
    `${k}/arch/${karch}/include`,
    `${k}/arch/${karch}/include/generated`,
    `${k}/include`,
    `${k}/arch/${karch}/include/uapi`,
    `${k}/arch/${karch}/include/generated/uapi`,
    `${k}/include/uapi`,
    `${k}/include/generated/uapi`,
  ]);
  return [
    ...kernel.filter((d) => existsSync(d)),
    '/usr/local/include',
    `/usr/include/${machine}-linux-gnu`,
    '/usr/include',
  ];
}

interface Include {
  name: string;
  /** `#include "x"` (searched in `from` first) rather than `<x>`. */
  quoted: boolean;
  from?: string;
  /** Where clang would say a missing file was included. */
  where: string;
}

/**
 * The `#include <x>` / `#include "x"` lines of a script. bpftrace copies them into a `definitions.h` after
 * one line of its own, which is where clang's errors point.
 */
function includesOf(text: string, from: string | undefined): Include[] {
  const out: Include[] = [];
  for (const m of text.matchAll(/^([ \t]*#[ \t]*include[ \t]*)(?:<([^>\n]+)>|"([^"\n]+)")/gm)) {
    const where = `definitions.h:${out.length + 2}:${m[1].length + 1}`;
    if (m[2] !== undefined) out.push({ name: m[2], quoted: false, from, where });
    else out.push({ name: m[3] as string, quoted: true, from, where });
  }
  return out;
}

/** `#define NAME BODY` lines (object-like macros only), comments removed. */
function definesOf(text: string, into: Map<string, string>): void {
  for (const m of text.matchAll(/^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(?!\()[ \t]*(.*)$/gm))
    if (!into.has(m[1])) into.set(m[1], m[2].replace(/\/\/.*$|\/\*.*?\*\//g, '').trim());
}

/** The `#define`s of the header trees under `roots` (first definition wins). */
function collectDefines(roots: readonly Include[], o: IncludeOptions, defines: Map<string, string>): void {
  const seen = new Set<string>();
  const find = (name: string, quoted: boolean, from: string | undefined): string | undefined => {
    if (isAbsolute(name)) return existsSync(name) ? name : undefined;
    for (const d of [...(quoted && from ? [from] : []), ...(o.dirs ?? []), ...systemDirs()]) {
      const p = join(d, name);
      if (existsSync(p)) return p;
    }
    return undefined;
  };
  const visit = (path: string, depth: number): void => {
    if (seen.has(path) || depth > 64) return;
    seen.add(path);
    let text: string;
    try {
      text = readFileSync(path, 'latin1');
    } catch {
      return;
    }
    // Continuation lines and block comments are not part of a definition's value.
    text = text.replace(/\\\n/g, ' ').replace(/\/\*[\s\S]*?\*\//g, ' ');
    for (const m of text.matchAll(/^\s*#\s*include\s*(?:<([^>\n]+)>|"([^"\n]+)")/gm)) {
      const p = find(m[1] ?? (m[2] as string), m[2] !== undefined, dirname(path));
      // A nested include may sit under a conditional clang would skip: a missing one is no error.
      if (p) visit(p, depth + 1);
    }
    definesOf(text, defines);
  };
  for (const r of roots) {
    const p = find(r.name, r.quoted, r.from);
    if (!p) throw new HeaderNotFound(`${r.where}: fatal error: '${r.name}' file not found`);
    visit(p, 0);
  }
}

/** A #define body as an integer, following other macros; undefined when it is not an integer constant. */
function evaluate(name: string, defines: Map<string, string>, depth = 0): bigint | undefined {
  const body = defines.get(name);
  if (body === undefined || body === '' || depth > 32) return undefined;
  // Tokens: integer literals (C suffixes dropped), names, and the operators constants are built from.
  const tokens = body.match(/0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|[A-Za-z_]\w*|<<|>>|[-+~|&^()*]|\S/g) ?? [];
  let i = 0;
  const primary = (): bigint | undefined => {
    const t = tokens[i++];
    if (t === undefined) return undefined;
    if (t === '(') {
      const v = bitOr();
      return tokens[i++] === ')' ? v : undefined;
    }
    if (t === '-' || t === '+' || t === '~') {
      const v = primary();
      if (v === undefined) return undefined;
      return t === '-' ? -v : t === '~' ? ~v : v;
    }
    if (/^\d/.test(t)) return BigInt(t.replace(/[uUlL]+$/, ''));
    if (/^[A-Za-z_]/.test(t)) return evaluate(t, defines, depth + 1);
    return undefined;
  };
  const binary = (next: () => bigint | undefined, ops: string[]) => (): bigint | undefined => {
    let v = next();
    while (v !== undefined && ops.includes(tokens[i] ?? '')) {
      const op = tokens[i++];
      const r = next();
      if (r === undefined) return undefined;
      if (op === '*') v *= r;
      else if (op === '+') v += r;
      else if (op === '-') v -= r;
      else if (op === '<<') v <<= r;
      else if (op === '>>') v >>= r;
      else if (op === '&') v &= r;
      else if (op === '^') v ^= r;
      else v |= r;
    }
    return v;
  };
  const bitOr = binary(
    binary(binary(binary(binary(binary(primary, ['*']), ['+', '-']), ['<<', '>>']), ['&']), ['^']),
    ['|'],
  );
  const v = bitOr();
  return i === tokens.length ? v : undefined;
}

/**
 * The integer macros of the script's `#define`s, #includes and `--include` files that the script names and
 * does not define as bpftrace macros itself, as `macro NAME() { VALUE }` definitions ('' when there are
 * none), to append after the script's last line (so diagnostics keep their line and column numbers).
 * Throws HeaderNotFound when an #include or --include names no file.
 */
export function headerMacros(text: string, o: IncludeOptions = {}): string {
  const roots: Include[] = [
    ...(o.files ?? []).map((f) => ({ name: f, quoted: true, from: process.cwd(), where: `--include ${f}` })),
    ...includesOf(text, o.scriptDir),
  ];
  // The script's own `#define`s come first: they are what its names mean.
  const defines = new Map<string, string>();
  definesOf(text, defines);
  if (roots.length === 0 && defines.size === 0) return '';
  collectDefines(roots, o, defines);
  const macros = new Set([...text.matchAll(/\bmacro\s+([A-Za-z_]\w*)/g)].map((m) => m[1]));
  // The names the program uses (preprocessor lines aside).
  const used = new Set(text.replace(/^[ \t]*#.*$/gm, '').match(/\b[A-Za-z_]\w*\b/g) ?? []);
  let out = '';
  for (const name of used) {
    // All-lowercase names are the language's own words (true, min, comm...), never a header's constant.
    if (macros.has(name) || !defines.has(name) || !/[A-Z]/.test(name)) continue;
    const v = evaluate(name, defines);
    if (v !== undefined) out += `macro ${name}() { ${v < 0n ? `(${v})` : v} }\n`;
  }
  return out;
}
