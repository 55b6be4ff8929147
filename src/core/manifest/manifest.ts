/** A node described by hand, without Ansible: the contract of `comet init --manifest FILE`. */
export interface Manifest {
  file: string
  node?: string
  sentinels: ManifestSentinel[]
  /** Procedure name -> shell command, in clear text (the store keeps it base64-encoded, as in the seed). */
  fencing: Record<string, string>
  defaultFencing?: string
}

export interface ManifestSentinel {
  path: string
  create: boolean
  /** Resolved: the sentinel's own procedure, else default_fencing. */
  procedure: string
  line?: number
}
