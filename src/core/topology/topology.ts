export type SentinelMode = 'create' | 'already_present'

/** One sentinel as the store describes it. */
export interface SentinelSpec {
  path: string
  mode: SentinelMode
  /** sha256 in hex; empty until the agent has recorded (or created) the file. */
  checksum: string
  procedure: string
}

/** Everything a node watches and the commands that fence it. */
export interface Topology {
  node: string
  sentinels: SentinelSpec[]
  /** Procedure name -> the shell command, decoded. */
  procedures: Record<string, string>
}

export const CHECKSUM_PATTERN = /^[0-9a-f]{64}$/
