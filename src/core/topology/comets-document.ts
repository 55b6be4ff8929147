import {StoreDataError} from '../errors/index.js'
import {sentinelPathProblem} from '../sentinel/sentinel-path.js'
import {isValidName} from '../store/store-path.js'
import {CHECKSUM_PATTERN, DEFAULT_READ_POLICY, READ_POLICIES, type ReadPolicy, type SentinelMode, type SentinelSpec} from './topology.js'

/**
 * The seed's `comets/<node>` document: keys `<node>:already_present:<path>` and `<node>:create:<path>` map to a
 * checksum (empty until recorded), `<node>:fencing_procedure:<path>` to a procedure name.
 */
export type CometsDocument = Record<string, string>

export function sentinelKey(node: string, mode: SentinelMode, path: string): string {
  return `${node}:${mode}:${path}`
}

export function procedureKey(node: string, path: string): string {
  return `${node}:fencing_procedure:${path}`
}

export function readPolicyKey(node: string, path: string): string {
  return `${node}:on_read:${path}`
}

export function allowReaderKey(node: string, executable: string): string {
  return `${node}:allow_reader:${executable}`
}

export interface CometsContent {
  sentinels: SentinelSpec[]
  allowReaders: string[]
}

/** Reads a `comets/<node>` document; anything that breaks the layout is refused with the key that breaks it. */
export function parseCometsDocument(node: string, storeKey: string, data: Record<string, unknown>): SentinelSpec[] {
  return parseComets(node, storeKey, data).sentinels
}

export interface ParseOptions {
  /**
   * Give each sentinel a path string of its own rather than a slice of its key, which keeps the whole key alive:
   * for the resident agent, which holds every path for its life (a few megabytes at 100 000 sentinels), at the
   * cost of a copy that a one-shot command need not pay.
   */
  ownPaths?: boolean
}

export function parseComets(node: string, storeKey: string, data: Record<string, unknown>, options: ParseOptions = {}): CometsContent {
  // This loop runs once per key, 200 000 times on a server with 100 000 sentinels: it slices only the path, and
  // builds a message only when something is wrong.
  const sentinels = new Map<string, SentinelSpec>()
  /** Procedures and read policies named before their sentinel's own key; usually none, as the layout is written in order. */
  const pendingProcedures = new Map<string, string>()
  const policies = new Map<string, ReadPolicy>()
  const allowReaders: string[] = []
  const validNames = new Set<string>()
  const where = (key: string) => `${storeKey} key ${JSON.stringify(key)}`
  for (const key in data) {
    const value = data[key]
    const first = key.indexOf(':')
    const second = first < 0 ? -1 : key.indexOf(':', first + 1)
    if (second < 0) throw new StoreDataError(where(key), 'is not of the form <node>:<mode>:<path>')
    if (first !== node.length || !key.startsWith(node))
      throw new StoreDataError(where(key), `belongs to node ${JSON.stringify(key.slice(0, first))}, not ${JSON.stringify(node)}`)
    const kind = kindOf(key, first, second)
    const path = key.slice(second + 1)
    const pathProblem = sentinelPathProblem(path)
    if (pathProblem) throw new StoreDataError(where(key), `the path ${pathProblem}`)
    if (typeof value !== 'string') throw new StoreDataError(where(key), `the value must be a string, not ${typeof value}`)
    switch (kind) {
      case 'fencing_procedure': {
        if (!validNames.has(value)) {
          if (!isValidName(value)) throw new StoreDataError(where(key), `${JSON.stringify(value)} is not a valid procedure name`)
          validNames.add(value)
        }
        const sentinel = sentinels.get(path)
        if (sentinel) sentinel.procedure = value
        else pendingProcedures.set(path, value)
        break
      }
      case 'on_read':
        if (!(READ_POLICIES as readonly string[]).includes(value)) throw new StoreDataError(where(key), `${JSON.stringify(value)} is not a read policy (${READ_POLICIES.join(', ')})`)
        policies.set(path, value as ReadPolicy)
        break
      case 'allow_reader':
        allowReaders.push(path)
        break
      case 'create':
      case 'already_present':
        if (value !== '' && !CHECKSUM_PATTERN.test(value)) throw new StoreDataError(where(key), 'the checksum must be empty or 64 lowercase hex digits (sha256)')
        if (sentinels.has(path)) throw new StoreDataError(where(key), `the path is listed both as create and as already_present`)
        // The constant, not a slice of the key, which would keep the whole key alive in every sentinel.
        sentinels.set(path, {path: options.ownPaths ? ownCopy(path) : path, mode: kind, checksum: value, procedure: '', onRead: DEFAULT_READ_POLICY})
        break
      default:
        throw new StoreDataError(where(key), `unknown kind ${JSON.stringify(key.slice(first + 1, second))} (expected create, already_present, fencing_procedure, on_read or allow_reader)`)
    }
  }
  for (const [path, procedure] of pendingProcedures) {
    const sentinel = sentinels.get(path)
    if (!sentinel) throw new StoreDataError(`${storeKey} key ${JSON.stringify(procedureKey(node, path))}`, 'names a fencing procedure for a path that is not a sentinel')
    sentinel.procedure = procedure
  }
  for (const [path, policy] of policies) {
    const sentinel = sentinels.get(path)
    if (!sentinel) throw new StoreDataError(`${storeKey} key ${JSON.stringify(readPolicyKey(node, path))}`, 'names a read policy for a path that is not a sentinel')
    sentinel.onRead = policy
  }
  for (const sentinel of sentinels.values())
    if (sentinel.procedure === '') throw new StoreDataError(`${storeKey} key ${JSON.stringify(sentinelKey(node, sentinel.mode, sentinel.path))}`, `has no ${procedureKey(node, sentinel.path)}`)
  // By code unit, not localeCompare: the order only has to be stable, and ICU collation costs seconds at 100 000 paths.
  return {sentinels: [...sentinels.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), allowReaders: allowReaders.sort()}
}

type Kind = SentinelMode | 'fencing_procedure' | 'on_read' | 'allow_reader'
const KINDS: readonly Kind[] = ['create', 'already_present', 'fencing_procedure', 'on_read', 'allow_reader']

/** The kind between the key's first two colons, compared in place rather than sliced out. */
function kindOf(key: string, first: number, second: number): Kind | undefined {
  const length = second - first - 1
  for (const kind of KINDS) if (kind.length === length && key.startsWith(kind, first + 1)) return kind
  return undefined
}

/** A copy that shares no memory with `text` (a slice of a key), or `text` itself when no faithful copy can be made. */
function ownCopy(text: string): string {
  const latin1 = Buffer.from(text, 'latin1').toString('latin1')
  if (latin1 === text) return latin1
  const utf8 = Buffer.from(text, 'utf8').toString('utf8')
  return utf8 === text ? utf8 : text
}

export function toCometsDocument(node: string, sentinels: readonly SentinelSpec[], allowReaders: readonly string[] = []): CometsDocument {
  const document: CometsDocument = {}
  for (const sentinel of sentinels) {
    document[sentinelKey(node, sentinel.mode, sentinel.path)] = sentinel.checksum
    document[procedureKey(node, sentinel.path)] = sentinel.procedure
    // The default is not written, so that a node described without read policies keeps the seed's layout exactly.
    if (sentinel.onRead !== DEFAULT_READ_POLICY) document[readPolicyKey(node, sentinel.path)] = sentinel.onRead
  }
  for (const executable of allowReaders) document[allowReaderKey(node, executable)] = ''
  return document
}
