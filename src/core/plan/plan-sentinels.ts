import {randomInt} from 'node:crypto'
import {closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, unlinkSync} from 'node:fs'
import {extname, join} from 'node:path'
import {stringify} from 'yaml'

import {CometError, errnoCode} from '../errors/index.js'
import {sentinelPathProblem} from '../sentinel/sentinel-path.js'
import {readdirOrder} from './readdir-order.js'

/** Extensions ransomware goes after first; a sentinel takes the directory's own favourites among them. */
export const TARGET_EXTENSIONS = ['.docx', '.xlsx', '.pdf', '.sql', '.db', '.doc', '.xls', '.pptx', '.odt', '.ods', '.csv', '.txt', '.jpg', '.png', '.zip', '.bak', '.sqlite']
const FALLBACK_EXTENSIONS = ['.docx', '.xlsx', '.pdf', '.sql', '.db']
const STEMS = ['invoices', 'payroll', 'budget', 'contracts', 'customers', 'backup', 'accounts', 'report-q4', 'passwords', 'tax-return', 'orders', 'ledger', 'board-minutes', 'salaries', 'inventory']

/**
 * Sentinels per directory: an encryptor walks a directory in readdir order (hash order on ext4), so the first sentinel it meets among n files with k sentinels at random places comes after about
 * n * 0.69 / k files. A density of 8 % keeps that median under six files; probing the order (below) does better.
 */
export const DEFAULT_DENSITY = 0.08

/**
 * Probing: where readdir returns names in an order fixed by the name (a hash, as ext4's indexed directories do),
 * a name can be chosen to come early. Plan creates this many candidates per sentinel wanted (empty files, removed at once),
 * reads the directory's order, and keeps the candidates that come first.
 */
export const PROBE_CANDIDATES_PER_SENTINEL = 8
const PROBE_MAX_CANDIDATES = 1024

export interface PlanRequest {
  root: string
  /** A fixed number per directory instead of the density rule. */
  perDirectory?: number
  density?: number
  /** Dot-prefixed names, hidden from ls and most users. */
  hidden?: boolean
  node?: string
  /** The procedure every proposed sentinel triggers. */
  fencingCommand: string
  /** false: do not probe the directories' readdir order (plan then writes nothing at all). */
  probeOrder?: boolean
  /** Checked between directories, once the last one's probe files are removed: stop there (PlanInterrupted). */
  signal?: AbortSignal
}

/** The plan was stopped (SIGINT, SIGTERM) between two directories; every probe file was removed. */
export class PlanInterrupted extends CometError {}

export interface PlannedSentinel {
  path: string
  directory: string
  /** Files in that directory when planned. */
  siblings: number
  /** Where the name came in the directory's readdir order when probed (0: first), among `siblings` + candidates. */
  probedPosition?: number
}

export interface PlanResult {
  root: string
  directories: number
  files: number
  /** Directories whose readdir order was probed; the others (read-only, not permitted) got names at random places. */
  probed: number
  /** Probe files that could not be removed (never expected): named so that an operator can remove them. */
  leftovers: string[]
  sentinels: PlannedSentinel[]
  /** A manifest to review, then feed to comet init --manifest. */
  manifest: string
}

export async function planSentinels(request: PlanRequest): Promise<PlanResult> {
  const rootStats = safeLstat(request.root)
  if (!rootStats?.isDirectory()) throw new CometError(`${request.root} is not a directory`, {culprit: request.root})
  const density = request.density ?? DEFAULT_DENSITY
  const sentinels: PlannedSentinel[] = []
  let directories = 0
  let files = 0
  let probed = 0
  const leftovers: string[] = []
  const queue = [request.root]
  while (queue.length > 0) {
    // A turn of the event loop between directories, so that a signal can stop the walk (never mid-probe).
    await new Promise((resolve) => setImmediate(resolve))
    if (request.signal?.aborted) throw new PlanInterrupted(`comet plan was interrupted (${String(request.signal.reason)}) after ${directories} director${directories === 1 ? 'y' : 'ies'}; every probe file was removed and no manifest was written`)
    const directory = queue.shift() as string
    let names: string[]
    try {
      names = readdirSync(directory)
    } catch (error) {
      if (errnoCode(error) === 'EACCES') continue
      throw error
    }
    directories++
    const regular: string[] = []
    for (const name of names) {
      const stats = safeLstat(join(directory, name))
      // Never into a symlink: a plan must stay inside the tree it was asked about.
      if (stats?.isDirectory()) queue.push(join(directory, name))
      else if (stats?.isFile()) regular.push(name)
    }
    files += regular.length
    if (regular.length === 0) continue
    const count = request.perDirectory ?? Math.max(1, Math.ceil(regular.length * density))
    const taken = new Set(names)
    const wanted = request.probeOrder === false ? count : Math.min(PROBE_MAX_CANDIDATES, count * PROBE_CANDIDATES_PER_SENTINEL)
    const candidates = proposeNames(regular, Math.max(count, wanted), request.hidden === true, taken).filter((name) => !sentinelPathProblem(join(directory, name)))
    const order = request.probeOrder === false ? undefined : probeReaddirOrder(directory, candidates, leftovers)
    if (order) probed++
    const chosen = order ? [...candidates].sort((a, b) => (order.get(a) as number) - (order.get(b) as number)).slice(0, count) : candidates.slice(0, count)
    for (const name of chosen) sentinels.push({path: join(directory, name), directory, siblings: regular.length, probedPosition: order?.get(name)})
  }
  const manifest = stringify({
    ...(request.node ? {node: request.node} : {}),
    sentinels: sentinels.map((sentinel) => ({path: sentinel.path, create: true})),
    fencing: {fence: request.fencingCommand},
    default_fencing: 'fence',
  })
  const how = probed > 0 ? `names chosen to come first in the readdir order of ${probed} director${probed === 1 ? 'y' : 'ies'} (probed with empty files, removed)` : 'names at random places in readdir order'
  const header = `# Proposed by comet plan for ${request.root}: ${sentinels.length} sentinel(s) in ${directories} director${directories === 1 ? 'y' : 'ies'} holding ${files} file(s); ${how}.\n# Review the paths and the fencing command, then: comet init --manifest <this file>\n`
  return {root: request.root, directories, files, probed, leftovers, sentinels, manifest: header + manifest}
}

/** Names that look like the directory's own valuable files, taking its favourite target extensions first. */
function proposeNames(files: string[], count: number, hidden: boolean, taken: Set<string>): string[] {
  const tally = new Map<string, number>()
  for (const name of files) {
    const extension = extname(name).toLowerCase()
    if (TARGET_EXTENSIONS.includes(extension)) tally.set(extension, (tally.get(extension) ?? 0) + 1)
  }
  const favourites = [...tally.entries()].sort((a, b) => b[1] - a[1]).map(([extension]) => extension)
  const extensions = favourites.length > 0 ? favourites : FALLBACK_EXTENSIONS
  const names: string[] = []
  for (let index = 0; names.length < count && index < count * 20; index++) {
    const stem = STEMS[randomInt(STEMS.length)]
    const year = 2019 + randomInt(8)
    const candidate = `${hidden ? '.' : ''}${stem}-${year}${index >= STEMS.length ? `-${index}` : ''}${extensions[names.length % extensions.length]}`
    if (taken.has(candidate)) continue
    taken.add(candidate)
    names.push(candidate)
  }
  return names
}

/**
 * Where each candidate name comes in the directory's readdir order: each is created as an empty file (O_EXCL, no
 * link followed), the directory is read as an encryptor reads it, and every candidate is removed again, whatever
 * happens. All of it goes through one descriptor of the directory (/proc/self/fd/N), checked to be the directory
 * the walk looked at: a directory swapped for a symlink meanwhile cannot send the probe elsewhere. Undefined when
 * the directory cannot be probed (read-only, not permitted, not the same directory): no probe, no harm. A
 * candidate that could not be removed is added to `leftovers`.
 */
function probeReaddirOrder(directory: string, candidates: string[], leftovers: string[]): Map<string, number> | undefined {
  let fd: number
  try {
    fd = openSync(directory, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
  } catch {
    return undefined
  }
  const created: string[] = []
  const here = `/proc/self/fd/${fd}`
  try {
    const seen = lstatSync(directory)
    const opened = fstatSync(fd)
    if (seen.dev !== opened.dev || seen.ino !== opened.ino) return undefined
    for (const name of candidates) {
      closeSync(openSync(join(here, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600))
      created.push(name)
    }
    const wanted = new Set(candidates)
    const order = new Map<string, number>()
    readdirOrder(here).forEach((name, position) => wanted.has(name) && order.set(name, position))
    return order.size === candidates.length ? order : undefined
  } catch {
    return undefined
  } finally {
    for (const name of created)
      try {
        unlinkSync(join(here, name))
      } catch {
        leftovers.push(join(directory, name))
      }
    closeSync(fd)
  }
}

function safeLstat(path: string) {
  try {
    return lstatSync(path)
  } catch {
    return undefined
  }
}
