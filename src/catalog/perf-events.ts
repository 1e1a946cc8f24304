/**
 * perf_event_open(2)'s generic events, as BPF perf_event programs attach to them: `PERF_TYPE_SOFTWARE`
 * (type 1) and `PERF_TYPE_HARDWARE` (type 0) configs from uapi/linux/perf_event.h, the names perf and
 * bpftrace give them (with bpftrace's aliases), and bpftrace's default sample period for software events.
 */

export const PERF_TYPE_HARDWARE = 0;
export const PERF_TYPE_SOFTWARE = 1;
export const PERF_TYPE_TRACEPOINT = 2;
export const PERF_COUNT_SW_CPU_CLOCK = 0;

export interface PerfEvent {
  /** perf's name (`cpu-clock`). */
  name: string;
  /** `perf_event_attr.config`. */
  config: number;
  /** Other names bpftrace accepts (`cpu`). */
  aliases: readonly string[];
  /** bpftrace's sample period when the probe gives none (software events). */
  defaultPeriod?: bigint;
}

export const SOFTWARE_EVENTS: readonly PerfEvent[] = [
  { name: 'cpu-clock', config: 0, aliases: ['cpu'], defaultPeriod: 1000000n },
  { name: 'task-clock', config: 1, aliases: [], defaultPeriod: 1000000n },
  { name: 'page-faults', config: 2, aliases: ['faults'], defaultPeriod: 100n },
  { name: 'context-switches', config: 3, aliases: ['cs'], defaultPeriod: 1000n },
  { name: 'cpu-migrations', config: 4, aliases: [], defaultPeriod: 1n },
  { name: 'minor-faults', config: 5, aliases: [], defaultPeriod: 100n },
  { name: 'major-faults', config: 6, aliases: [], defaultPeriod: 1n },
  { name: 'alignment-faults', config: 7, aliases: [], defaultPeriod: 1n },
  { name: 'emulation-faults', config: 8, aliases: [], defaultPeriod: 1n },
  { name: 'dummy', config: 9, aliases: [], defaultPeriod: 1n },
  { name: 'bpf-output', config: 10, aliases: [], defaultPeriod: 1n },
];

export const HARDWARE_EVENTS: readonly PerfEvent[] = [
  { name: 'cpu-cycles', config: 0, aliases: ['cycles'] },
  { name: 'instructions', config: 1, aliases: [] },
  { name: 'cache-references', config: 2, aliases: [] },
  { name: 'cache-misses', config: 3, aliases: [] },
  { name: 'branch-instructions', config: 4, aliases: ['branches'] },
  { name: 'branch-misses', config: 5, aliases: [] },
  { name: 'bus-cycles', config: 6, aliases: [] },
  { name: 'frontend-stalls', config: 7, aliases: [] },
  { name: 'backend-stalls', config: 8, aliases: [] },
  { name: 'ref-cycles', config: 9, aliases: [] },
];

/** The event with this name or alias. */
export function perfEventByName(events: readonly PerfEvent[], name: string): PerfEvent | undefined {
  return events.find((e) => e.name === name || e.aliases.includes(name));
}
