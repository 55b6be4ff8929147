import {randomInt} from 'node:crypto'
import {lstatSync, readdirSync} from 'node:fs'
import {extname, join} from 'node:path'
import {stringify} from 'yaml'

import {CometError, errnoCode} from '../errors/index.js'
import {sentinelPathProblem} from '../sentinel/sentinel-path.js'

/** Extensions ransomware goes after first; a sentinel takes the directory's own favourites among them. */
export const TARGET_EXTENSIONS = ['.docx', '.xlsx', '.pdf', '.sql', '.db', '.doc', '.xls', '.pptx', '.odt', '.ods', '.csv', '.txt', '.jpg', '.png', '.zip', '.bak', '.sqlite']
const FALLBACK_EXTENSIONS = ['.docx', '.xlsx', '.pdf', '.sql', '.db']
const STEMS = ['invoices', 'payroll', 'budget', 'contracts', 'customers', 'backup', 'accounts', 'report-q4', 'passwords', 'tax-return', 'orders', 'ledger', 'board-minutes', 'salaries', 'inventory']

/**
 * Sentinels per directory: an encryptor walks a directory in readdir order (hash order on ext4, whatever the
 * names), so the first sentinel it meets among n files with k sentinels comes after about n * 0.69 / k files.
 * A density of 8 % keeps the median loss in one directory under six files.
 */
export const DEFAULT_DENSITY = 0.08

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
}

export interface PlannedSentinel {
  path: string
  directory: string
  /** Files in that directory when planned. */
  siblings: number
}

export interface PlanResult {
  root: string
  directories: number
  files: number
  sentinels: PlannedSentinel[]
  /** A manifest to review, then feed to comet init --manifest. */
  manifest: string
}

export function planSentinels(request: PlanRequest): PlanResult {
  const rootStats = safeLstat(request.root)
  if (!rootStats?.isDirectory()) throw new CometError(`${request.root} is not a directory`, {culprit: request.root})
  const density = request.density ?? DEFAULT_DENSITY
  const sentinels: PlannedSentinel[] = []
  let directories = 0
  let files = 0
  const queue = [request.root]
  while (queue.length > 0) {
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
    for (const name of proposeNames(regular, count, request.hidden === true, taken)) {
      const path = join(directory, name)
      if (sentinelPathProblem(path)) continue
      sentinels.push({path, directory, siblings: regular.length})
    }
  }
  const manifest = stringify({
    ...(request.node ? {node: request.node} : {}),
    sentinels: sentinels.map((sentinel) => ({path: sentinel.path, create: true})),
    fencing: {fence: request.fencingCommand},
    default_fencing: 'fence',
  })
  const header = `# Proposed by comet plan for ${request.root}: ${sentinels.length} sentinel(s) in ${directories} director${directories === 1 ? 'y' : 'ies'} holding ${files} file(s).\n# Review the paths and the fencing command, then: comet init --manifest <this file>\n`
  return {root: request.root, directories, files, sentinels, manifest: header + manifest}
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

function safeLstat(path: string) {
  try {
    return lstatSync(path)
  } catch {
    return undefined
  }
}
