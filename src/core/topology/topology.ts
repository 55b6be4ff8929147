export type SentinelMode = 'create' | 'already_present'

/** What a read of the sentinel does where fanotify is available (`<node>:on_read:<path>`; default freeze). */
export type ReadPolicy = 'deny' | 'freeze' | 'fence' | 'allow'
export const READ_POLICIES: readonly ReadPolicy[] = ['deny', 'freeze', 'fence', 'allow']
export const DEFAULT_READ_POLICY: ReadPolicy = 'freeze'

/** Procedures every node has without a fencing/<name> document: they act on the processes caught touching a sentinel. */
export const BUILTIN_PROCEDURES: Record<string, string> = {
  freeze: 'if [ -n "$COMET_SUSPECT_PIDS" ]; then kill -STOP $COMET_SUSPECT_PIDS; fi',
  kill: 'if [ -n "$COMET_SUSPECT_PIDS" ]; then kill -KILL $COMET_SUSPECT_PIDS; fi',
}

/** One sentinel as the store describes it. */
export interface SentinelSpec {
  path: string
  mode: SentinelMode
  /** sha256 in hex; empty until the agent has recorded (or created) the file. */
  checksum: string
  procedure: string
  onRead: ReadPolicy
}

/** Everything a node watches and the commands that fence it. */
export interface Topology {
  node: string
  sentinels: SentinelSpec[]
  /** Procedure name -> the shell command, decoded. */
  procedures: Record<string, string>
  /** Executables whose reads of sentinels are allowed (backup agents): `<node>:allow_reader:<path>`. */
  allowReaders: string[]
}

export const CHECKSUM_PATTERN = /^[0-9a-f]{64}$/
