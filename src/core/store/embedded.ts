import {readdirSync, readFileSync, unlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {CasConflictError, CometError, errnoCode, StoreDataError} from '../errors/index.js'
import {writeFileAtomic} from '../files/atomic-write.js'
import {readPrivateJson} from '../files/private-json.js'
import {checkPrivateDirectoryIfPresent, ensurePrivateDirectory} from '../files/private-path.js'
import type {KvStore, StoredDocument, WriteOptions} from './store.js'
import {assertStorePath} from './store-path.js'

interface DocumentFile {
  version: number
  data: Record<string, unknown>
}

/**
 * The store for a single machine without Vault: one JSON document per path under a private directory,
 * replaced atomically (temporary file, fsync, rename). Nothing is created until the first write, so a
 * refused command leaves no trace.
 */
export class EmbeddedStore implements KvStore {
  readonly description: string

  constructor(readonly root: string) {
    this.description = `file:${root}`
  }

  async read<T = Record<string, unknown>>(path: string): Promise<StoredDocument<T> | null> {
    const file = this.fileOf(path)
    if (!this.foldersArePrivate(assertStorePath(path).slice(0, -1))) return null
    const parsed = this.readFile(path, file)
    return parsed === null ? null : {data: parsed.data as T, version: parsed.version}
  }

  async write(path: string, data: Record<string, unknown>, options: WriteOptions = {}): Promise<number> {
    const file = this.fileOf(path)
    const folder = join(this.root, ...assertStorePath(path).slice(0, -1))
    ensurePrivateDirectory(this.root)
    ensurePrivateDirectory(folder)
    return this.withLock(file, () => {
      const current = this.readFile(path, file)
      const currentVersion = current?.version ?? 0
      if (options.cas !== undefined && options.cas !== currentVersion) throw new CasConflictError(path)
      const version = currentVersion + 1
      const document: DocumentFile = {version, data}
      writeFileAtomic(file, JSON.stringify(document) + '\n')
      return version
    })
  }

  async list(folder: string): Promise<string[]> {
    const directory = join(this.root, ...assertStorePath(folder))
    if (!this.foldersArePrivate(assertStorePath(folder))) return []
    return readdirSync(directory)
      .filter((name) => name.endsWith('.json') && !name.startsWith('.'))
      .map((name) => name.slice(0, -'.json'.length))
      .sort()
  }

  async close(): Promise<void> {}

  /** Every folder from the root down to a document must be private, or the document could be swapped. False when one is absent. */
  private foldersArePrivate(segments: string[]): boolean {
    if (!checkPrivateDirectoryIfPresent(this.root)) return false
    for (let depth = 1; depth <= segments.length; depth++) if (!checkPrivateDirectoryIfPresent(join(this.root, ...segments.slice(0, depth)))) return false
    return true
  }

  private fileOf(path: string): string {
    return join(this.root, ...assertStorePath(path)) + '.json'
  }

  private readFile(path: string, file: string): DocumentFile | null {
    const parsed = readPrivateJson<unknown>(file)
    if (parsed === undefined) return null
    if (!isDocumentFile(parsed)) throw new StoreDataError(path, `${file} is not a store document ({"version": n, "data": {...}})`)
    return parsed
  }

  /** A lock file shared by every comet process on the machine, so that check-and-set holds across processes. */
  private async withLock<R>(file: string, body: () => R): Promise<R> {
    const lock = `${file}.lock`
    for (let attempt = 0; ; attempt++) {
      try {
        writeFileSync(lock, `${process.pid}\n`, {flag: 'wx', mode: 0o600})
        break
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error
        if (lockIsStale(lock)) {
          try {
            unlinkSync(lock)
          } catch {}
          continue
        }
        if (attempt > 1000) throw new CometError(`${lock} is held by another comet process; remove it if no comet process is running`, {culprit: lock})
        await sleep(5)
      }
    }
    try {
      return body()
    } finally {
      unlinkSync(lock)
    }
  }
}

function lockIsStale(lock: string): boolean {
  try {
    const pid = Number.parseInt(readFileSync(lock, 'utf8'), 10)
    if (!Number.isInteger(pid) || pid <= 0) return true
    process.kill(pid, 0)
    return false
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false
    if (errnoCode(error) === 'ESRCH') return true
    return errnoCode(error) !== 'EPERM'
  }
}

function isDocumentFile(value: unknown): value is DocumentFile {
  if (typeof value !== 'object' || value === null) return false
  const candidate = value as Partial<DocumentFile>
  return Number.isInteger(candidate.version) && typeof candidate.data === 'object' && candidate.data !== null && !Array.isArray(candidate.data)
}
