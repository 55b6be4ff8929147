/** Exit codes are part of the interface: cron jobs and systemd units branch on them. */
export const ExitCode = {
  Ok: 0,
  Tampered: 1,
  CannotCheck: 2,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * Every failure the agent expects carries the exit code and a message written for an operator,
 * naming the culprit (a file, a key, a field). The command layer maps these once.
 */
export class CometError extends Error {
  readonly exitCode: ExitCode
  readonly culprit?: string

  constructor(message: string, options: {culprit?: string; exitCode?: ExitCode; cause?: unknown} = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.exitCode = options.exitCode ?? ExitCode.CannotCheck
    this.culprit = options.culprit
  }
}

/** The manifest a user wrote is wrong; `line` points into the file. */
export class ManifestError extends CometError {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly line: number | undefined,
    problem: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${field}: ${problem}`, {culprit: field})
  }
}

/** The store could not be reached or answered with an error. */
export class StoreUnavailableError extends CometError {}

/** The store answered, but what it holds breaks the seed's layout. */
export class StoreDataError extends CometError {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`bad data in the store at ${key}: ${problem}`, {culprit: key})
  }
}

/** A check-and-set write lost a race: somebody else wrote the document first. */
export class CasConflictError extends CometError {
  constructor(readonly key: string) {
    super(`${key} was changed by someone else while it was being written`, {culprit: key})
  }
}

/** A path is hostile or unsafe: a symlink, a file writable by another user, a path with `..`. */
export class UnsafePathError extends CometError {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`, {culprit: path})
  }
}

/** Flags, environment or arguments do not make sense together. */
export class UsageError extends CometError {}

/** A sentinel could not be planted or read for a reason other than tampering. */
export class SentinelError extends CometError {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`, {culprit: path})
  }
}

export function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as {code: unknown}).code) : undefined
}
