/** A document as the store holds it: its data and the version that check-and-set writes compare against. */
export interface StoredDocument<T = Record<string, unknown>> {
  data: T
  version: number
}

export interface StoreCallOptions {
  /** Give up after this long; reports use a short bound so that they never hold up fencing. */
  timeoutMs?: number
}

export interface WriteOptions extends StoreCallOptions {
  /** Check-and-set: the write succeeds only if the document is still at this version (0: must not exist yet). */
  cas?: number
}

/**
 * The small key-value interface every store implements: the embedded store on local disk and Vault (KV v2).
 * Paths are slash-separated, relative, like the seed's `comets/<node>` and `fencing/<name>`.
 */
export interface KvStore {
  /** Says where the data lives, for messages (never includes a credential). */
  readonly description: string
  /** Absent documents read as null, not as an error. */
  read<T = Record<string, unknown>>(path: string, options?: StoreCallOptions): Promise<StoredDocument<T> | null>
  /** Returns the new version. Throws CasConflictError when `cas` does not match. */
  write(path: string, data: Record<string, unknown>, options?: WriteOptions): Promise<number>
  /** The names directly under a folder, without the folder; an absent folder lists as empty. */
  list(folder: string, options?: StoreCallOptions): Promise<string[]>
  close(): Promise<void>
}

/** The three folders of the seed's layout. */
export const StorePaths = {
  comets: (node: string) => `comets/${node}`,
  fencing: (name: string) => `fencing/${name}`,
  status: (node: string) => `comet-status/${node}`,
} as const
