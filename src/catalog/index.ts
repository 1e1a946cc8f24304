/**
 * catalog/: facts about eBPF as data, written once and read by everyone (verifier, VM, kernel
 * backend, tracing compiler, CLI). Tables only, plus lookups over them and libbpf's SEC() matcher.
 */
export * from './attach-types.js';
export * from './helpers.js';
export * from './map-types.js';
export * from './perf-events.js';
export * from './program-types.js';
export * from './sections.js';
