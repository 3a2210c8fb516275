/**
 * Signal numbers as upstream writes them: the OCaml runtime's numbers (Sys.sigabrt = -1 ...
 * Sys.sigxfsz = -28), negative so that they cannot be confused with the host's. A number
 * outside this table is the host's own signal number, passed through.
 */

/** OCaml's Sys.sig* in order: index i is signal -(i+1). */
const OCAML_NAMES = [
  'SIGABRT', 'SIGALRM', 'SIGFPE', 'SIGHUP', 'SIGILL', 'SIGINT', 'SIGKILL', 'SIGPIPE', 'SIGQUIT', 'SIGSEGV', 'SIGTERM', 'SIGUSR1',
  'SIGUSR2', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGVTALRM', 'SIGPROF', 'SIGBUS', 'SIGPOLL', 'SIGSYS',
  'SIGTRAP', 'SIGURG', 'SIGXCPU', 'SIGXFSZ',
] as const;

/** The name of an OCaml signal number (`-11` -> `SIGTERM`), or undefined. */
export function ocamlSignalName(n: number): string | undefined {
  return n < 0 && n >= -OCAML_NAMES.length ? OCAML_NAMES[-n - 1] : undefined;
}

/** The OCaml number of a signal name (`SIGTERM` -> -11), or undefined. */
export function ocamlSignalOfName(name: string): number | undefined {
  const i = (OCAML_NAMES as readonly string[]).indexOf(name);
  return i < 0 ? undefined : -(i + 1);
}

/** How a wire signal number is shown: its name, or `signal N` when it has none. */
export function describeSignal(n: number): string {
  return ocamlSignalName(n) ?? `signal ${n}`;
}

/**
 * The wire number of a signal the host reported by name (`SIGBUS` -> -22): OCaml's number, or
 * the host's own (`hostNumbers`, e.g. os.constants.signals) for one OCaml does not know.
 */
export function wireSignal(name: string, hostNumbers: Readonly<Record<string, number>>): number {
  return ocamlSignalOfName(name) ?? hostNumbers[name] ?? 0;
}
