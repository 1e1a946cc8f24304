import { MAP_FLAGS } from '../../catalog/map-types.js';
import { type ObjectSpec, readObject } from '../../object/spec.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';
import { readInput } from '../files.js';

/** `BPF_F_RDONLY_PROG|BPF_F_MMAPABLE`-style names for map_flags bits (hex for unknown bits). */
export function mapFlagNames(flags: number): string[] {
  const names: string[] = [];
  let rest = flags >>> 0;
  for (const [name, bit] of Object.entries(MAP_FLAGS)) {
    if (rest & bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest) names.push(`0x${rest.toString(16)}`);
  return names;
}

/** The JSON summary `tsbpf object --json` prints. */
export function objectSummary(spec: ObjectSpec) {
  return {
    name: spec.name,
    license: spec.license,
    kernelVersion: spec.kernelVersion,
    programs: spec.programs.map((p) => ({
      name: p.name,
      section: p.section,
      type: p.type ?? null,
      attachType: p.attachType ?? null,
      attachTarget: p.attachTarget ?? null,
      autoload: p.autoload,
      insnCount: p.slotCount,
      functions: p.functions.map((f) => f.name),
      maps: [...new Set(p.references.flatMap((r) => ('map' in r ? [r.map] : [])))],
      externs: [
        ...new Set(p.references.flatMap((r) => ('extern' in r && r.extern !== undefined ? [r.extern] : []))),
      ],
    })),
    maps: spec.maps.map((m) => ({
      name: m.name,
      kind: m.kind,
      type: m.type,
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.maxEntries,
      flags: m.flags,
      flagNames: mapFlagNames(m.flags),
      ...(m.numaNode ? { numaNode: m.numaNode } : {}),
      ...(m.mapExtra
        ? {
            mapExtra:
              m.mapExtra <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(m.mapExtra) : m.mapExtra.toString(),
          }
        : {}),
      ...(m.pinning !== 'none' ? { pinning: m.pinning } : {}),
      ...(m.frozen ? { frozen: true } : {}),
      ...(m.inner
        ? {
            inner: {
              type: m.inner.type,
              keySize: m.inner.keySize,
              valueSize: m.inner.valueSize,
              maxEntries: m.inner.maxEntries,
            },
          }
        : {}),
      ...(m.initialSlots ? { initialValues: m.initialSlots.map((s) => s?.name ?? null) } : {}),
    })),
    variables: spec.variables.map((v) => ({
      name: v.name,
      section: v.section,
      map: v.map,
      offset: v.offset,
      size: v.size,
      type: v.type ?? null,
      linkage: v.linkage,
      readonly: v.readonly,
    })),
    externs: spec.externs.map((e) => ({
      name: e.name,
      kind: e.kind,
      weak: e.weak,
      ...(e.kconfig ? { offset: e.kconfig.offset, size: e.kconfig.size, kconfigType: e.kconfig.type } : {}),
      ...(e.ksym ? { function: e.ksym.func, typed: e.ksym.typeId !== 0 } : {}),
    })),
    warnings: spec.warnings,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function text(spec: ObjectSpec, path: string): string {
  const out: string[] = [
    `${path}: license "${spec.license}"${spec.kernelVersion ? `, kernel version 0x${spec.kernelVersion.toString(16)}` : ''}`,
  ];
  out.push('', `programs (${spec.programs.length}):`);
  if (spec.programs.length) {
    out.push(
      table([
        ['  NAME', 'TYPE', 'ATTACH TYPE', 'SECTION', 'INSNS', 'SUBPROGRAMS'],
        ...spec.programs.map((p) => [
          `  ${p.name}`,
          p.type ?? '?',
          p.attachType ?? '-',
          `${p.autoload ? '' : '?'}${p.section}`,
          String(p.slotCount),
          p.functions
            .slice(1)
            .map((f) => f.name)
            .join(',') || '-',
        ]),
      ]),
    );
  }
  out.push('', `maps (${spec.maps.length}):`);
  if (spec.maps.length) {
    out.push(
      table([
        ['  NAME', 'TYPE', 'KEY', 'VALUE', 'MAX ENTRIES', 'FLAGS'],
        ...spec.maps.map((m) => [
          `  ${m.name}`,
          m.type + (m.inner ? ` of ${m.inner.type}` : ''),
          String(m.keySize),
          String(m.valueSize),
          String(m.maxEntries),
          mapFlagNames(m.flags).join('|') || '0',
        ]),
      ]),
    );
  }
  out.push('', `variables (${spec.variables.length}):`);
  if (spec.variables.length) {
    out.push(
      table([
        ['  NAME', 'SECTION', 'OFFSET', 'SIZE', 'TYPE'],
        ...spec.variables.map((v) => [
          `  ${v.name}`,
          v.section,
          String(v.offset),
          String(v.size),
          v.type ?? '?',
        ]),
      ]),
    );
  }
  if (spec.externs.length) {
    out.push('', `externs (${spec.externs.length}):`);
    out.push(
      table([
        ['  NAME', 'KIND', 'DETAIL'],
        ...spec.externs.map((e) => [
          `  ${e.name}`,
          e.kind + (e.weak ? ' (weak)' : ''),
          e.kconfig
            ? `.kconfig+${e.kconfig.offset} ${e.kconfig.type} (${e.kconfig.size} bytes)`
            : e.ksym?.func
              ? 'kfunc'
              : e.ksym?.typeId
                ? 'typed'
                : 'typeless',
        ]),
      ]),
    );
  }
  for (const w of spec.warnings) out.push(`warning: ${w}`);
  return `${out.join('\n')}\n`;
}

export const objectCommand: Command = {
  name: 'object',
  summary: 'summarise an eBPF ELF object: programs, maps, global variables, externs (as libbpf opens it)',
  usage: `Usage: tsbpf object OBJ [--json]

Reads a clang-built eBPF object the way libbpf's bpf_object__open does and prints its programs (type,
attach type, section, size in instructions after subprograms are appended), maps (type, key/value
sizes, max entries, flags), global variables and externs.
  --json  print { programs: [{ name, section, type, attachType, insnCount, ... }],
                  maps: [{ name, type, keySize, valueSize, maxEntries, flags, ... }],
                  variables: [...], externs: [...], license }
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      { ...helpOption, json: { type: 'boolean' } },
      { min: 1, max: 1 },
    );
    const path = positionals[0] as string;
    const bytes = path === '-' ? await io.readStdin() : readInput(path);
    const spec = readObject(bytes, path === '-' ? {} : { path });
    io.stdout(values.json ? `${JSON.stringify(objectSummary(spec), null, 2)}\n` : text(spec, path));
    return 0;
  },
};
