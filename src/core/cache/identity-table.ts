import type {FileIdentity} from '../sentinel/read-sentinel.js'

const FIELDS = 7

/**
 * Each sentinel's recorded identity (dev, ino, mode, uid, gid, mtimeMs, size), by path. A resident agent keeps
 * one per sentinel for its whole life, so they are packed in one Float64Array rather than held as 100 000
 * objects of seven boxed numbers each; get() builds an object when one is asked for.
 */
export class IdentityTable {
  private slots = new Map<string, number>()
  private values: Float64Array
  private free: number[] = []
  private used = 0

  constructor(capacity = 16) {
    this.values = new Float64Array(Math.max(1, capacity) * FIELDS)
  }

  get size(): number {
    return this.slots.size
  }

  has(path: string): boolean {
    return this.slots.has(path)
  }

  get(path: string): FileIdentity | undefined {
    const slot = this.slots.get(path)
    if (slot === undefined) return undefined
    const at = slot * FIELDS
    const v = this.values
    return {dev: v[at], ino: v[at + 1], mode: v[at + 2], uid: v[at + 3], gid: v[at + 4], mtimeMs: v[at + 5], size: v[at + 6]}
  }

  set(path: string, identity: FileIdentity): void {
    this.setValues(path, identity.dev, identity.ino, identity.mode, identity.uid, identity.gid, identity.mtimeMs, identity.size)
  }

  setValues(path: string, dev: number, ino: number, mode: number, uid: number, gid: number, mtimeMs: number, size: number): void {
    let slot = this.slots.get(path)
    if (slot === undefined) {
      slot = this.free.pop() ?? this.used++
      if ((slot + 1) * FIELDS > this.values.length) {
        const grown = new Float64Array(Math.max(this.values.length * 2, (slot + 1) * FIELDS))
        grown.set(this.values)
        this.values = grown
      }
      this.slots.set(path, slot)
    }
    const at = slot * FIELDS
    const v = this.values
    v[at] = dev
    v[at + 1] = ino
    v[at + 2] = mode
    v[at + 3] = uid
    v[at + 4] = gid
    v[at + 5] = mtimeMs
    v[at + 6] = size
  }

  delete(path: string): boolean {
    const slot = this.slots.get(path)
    if (slot === undefined) return false
    this.slots.delete(path)
    this.free.push(slot)
    return true
  }

  /**
   * Keeps only the identities of `paths`, keyed by those very strings (the topology's), so that the table holds
   * no second copy of every path. Returns whether any identity was dropped.
   */
  retain(paths: Iterable<string>): boolean {
    const kept = new Map<string, number>()
    for (const path of paths) {
      const slot = this.slots.get(path)
      if (slot !== undefined) kept.set(path, slot)
    }
    const dropped = kept.size !== this.slots.size
    if (dropped) for (const [path, slot] of this.slots) if (!kept.has(path)) this.free.push(slot)
    this.slots = kept
    return dropped
  }

  paths(): IterableIterator<string> {
    return this.slots.keys()
  }

  *entries(): IterableIterator<[string, FileIdentity]> {
    for (const path of this.slots.keys()) yield [path, this.get(path) as FileIdentity]
  }
}
