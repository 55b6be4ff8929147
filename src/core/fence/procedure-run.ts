/** What the agent knows about one run of a fencing procedure; this is also what the incident records. */
export interface ProcedureRun {
  name: string
  runId: string
  startedAt: string
  pid?: number
  endedAt?: string
  exitCode?: number
  signal?: string
  timedOut?: boolean
  /** The tail of what the procedure printed (stdout and stderr together). */
  output?: string
  /** Why the procedure did not run: it already ran since the last reset, a dry run, or --no-fence. */
  skipped?: 'already-ran' | 'dry-run' | 'no-fence'
  /** Set when the procedure could not be started at all. */
  error?: string
}

/** Variables every procedure receives. */
export interface ProcedureEnvironment {
  COMET_NODE: string
  COMET_SENTINEL: string
  COMET_REASON: string
  COMET_INCIDENT: string
  [name: string]: string
}

/**
 * The longest procedure, in bytes, that can run: it is one argument of `sh -c`, which Linux limits to 128 KiB with
 * its terminating NUL, and the launchers end the text with a newline.
 */
export const MAX_PROCEDURE_BYTES = 128 * 1024 - 2
