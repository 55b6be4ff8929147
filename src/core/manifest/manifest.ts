import type {ReadPolicy} from '../topology/topology.js'

/** A node described by hand, without Ansible: the contract of `comet init --manifest FILE`. */
export interface Manifest {
  file: string
  node?: string
  sentinels: ManifestSentinel[]
  /** Procedure name -> shell command, in clear text (the store keeps it base64-encoded, as in the seed). */
  fencing: Record<string, string>
  defaultFencing?: string
  /** Executables whose reads of sentinels are allowed (backup agents). */
  allowReaders: string[]
}

export interface ManifestSentinel {
  path: string
  create: boolean
  /** Resolved: the sentinel's own procedure, else default_fencing. */
  procedure: string
  onRead: ReadPolicy
  line?: number
}
