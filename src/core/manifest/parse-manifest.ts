import {lstatSync, readFileSync} from 'node:fs'
import {dirname} from 'node:path'
import {isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap} from 'yaml'

import {CometError, errnoCode, ManifestError} from '../errors/index.js'
import {sentinelPathProblem} from '../sentinel/sentinel-path.js'
import {isValidName} from '../store/store-path.js'
import {procedureSizeProblem} from '../topology/fencing-document.js'
import {BUILTIN_PROCEDURES, DEFAULT_READ_POLICY, READ_POLICIES, type ReadPolicy} from '../topology/topology.js'
import type {Manifest, ManifestSentinel} from './manifest.js'

const TOP_LEVEL_KEYS = new Set(['node', 'sentinels', 'fencing', 'default_fencing', 'allow_readers'])
const SENTINEL_KEYS = new Set(['path', 'create', 'fencing', 'on_read'])

/** Reads and validates a manifest completely before anything is written anywhere. */
export function loadManifest(file: string): Manifest {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new CometError(`cannot read the manifest ${file}: ${(error as Error).message}`, {culprit: file})
  }
  return parseManifest(file, text)
}

export function parseManifest(file: string, text: string): Manifest {
  const lines = new LineCounter()
  const document = parseDocument(text, {lineCounter: lines, uniqueKeys: true, prettyErrors: true})
  const lineOf = (node: Node | null | undefined) => (node?.range ? lines.linePos(node.range[0]).line : undefined)
  const fail = (field: string, node: Node | null | undefined, problem: string): never => {
    throw new ManifestError(file, field, lineOf(node), problem)
  }
  if (document.errors.length > 0) {
    const error = document.errors[0]
    throw new ManifestError(file, 'YAML', error.linePos?.[0].line, `invalid YAML: ${error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`)
  }
  const root = document.contents
  if (!isMap(root)) return fail('(document)', root, 'must be a mapping with node, sentinels, fencing and default_fencing')
  rejectUnknownKeys(root, TOP_LEVEL_KEYS, '', fail)

  const node = optionalString(root, 'node', fail)
  if (node !== undefined && !isValidName(node)) fail('node', root.get('node', true) as Node, "must be letters, digits, '.', '_' or '-'")

  const fencing: Record<string, string> = {}
  const fencingNode = root.get('fencing', true) as Node | undefined
  // Optional: sentinels may use only the built-in procedures (freeze, kill).
  if (fencingNode !== undefined && !isMap(fencingNode)) return fail('fencing', fencingNode, 'must be a mapping of procedure name to shell command')
  for (const pair of fencingNode?.items ?? []) {
    const name = isScalar(pair.key) ? pair.key.value : undefined
    if (typeof name !== 'string' || !isValidName(name)) fail('fencing', pair.key as Node, `procedure name ${JSON.stringify(name)} must be letters, digits, '.', '_' or '-'`)
    const command = isScalar(pair.value) ? pair.value.value : undefined
    if (typeof command !== 'string' || command.trim() === '') fail(`fencing.${name}`, (pair.value ?? pair.key) as Node, 'must be a non-empty shell command (a string)')
    if ((command as string).includes('\u0000')) fail(`fencing.${name}`, pair.value as Node, 'contains a NUL byte')
    const tooLong = procedureSizeProblem(command as string)
    if (tooLong) fail(`fencing.${name}`, pair.value as Node, tooLong)
    fencing[name as string] = command as string
  }

  const known = (name: string) => name in fencing || name in BUILTIN_PROCEDURES
  const defaultFencing = optionalString(root, 'default_fencing', fail)
  if (defaultFencing !== undefined && !known(defaultFencing))
    fail('default_fencing', root.get('default_fencing', true) as Node, `names ${JSON.stringify(defaultFencing)}, which is not under fencing`)

  const sentinelsNode = root.get('sentinels', true) as Node | undefined
  if (!isSeq(sentinelsNode) || sentinelsNode.items.length === 0) return fail('sentinels', sentinelsNode ?? root, 'must be a non-empty list of {path, create, fencing}')
  const sentinels: ManifestSentinel[] = []
  const seen = new Map<string, number | undefined>()
  sentinelsNode.items.forEach((item, index) => {
    const field = `sentinels[${index}]`
    if (!isMap(item)) return fail(field, item as Node, 'must be a mapping with path, create and fencing')
    rejectUnknownKeys(item, SENTINEL_KEYS, `${field}.`, fail)
    const pathNode = item.get('path', true) as Node | undefined
    const path = isScalar(pathNode) ? pathNode.value : undefined
    if (typeof path !== 'string') return fail(`${field}.path`, pathNode ?? item, 'is required and must be a string')
    const problem = sentinelPathProblem(path)
    if (problem) fail(`${field}.path`, pathNode, `${JSON.stringify(path)} ${problem}`)
    if (seen.has(path)) fail(`${field}.path`, pathNode, `${path} is listed twice (first at line ${seen.get(path)})`)
    seen.set(path, lineOf(pathNode))

    const createNode = item.get('create', true) as Node | undefined
    const create = createNode === undefined ? false : isScalar(createNode) ? createNode.value : undefined
    if (typeof create !== 'boolean') fail(`${field}.create`, createNode, 'must be true or false')

    const procedureNode = item.get('fencing', true) as Node | undefined
    const own = procedureNode === undefined ? undefined : isScalar(procedureNode) ? procedureNode.value : null
    if (own !== undefined && typeof own !== 'string') fail(`${field}.fencing`, procedureNode, 'must be a procedure name (a string)')
    const procedure = (own as string | undefined) ?? defaultFencing
    if (procedure === undefined) fail(`${field}.fencing`, item, 'is missing and there is no default_fencing')
    if (!known(procedure as string)) fail(`${field}.fencing`, procedureNode ?? item, `names ${JSON.stringify(procedure)}, which is not under fencing`)

    const policyNode = item.get('on_read', true) as Node | undefined
    const onRead = policyNode === undefined ? DEFAULT_READ_POLICY : isScalar(policyNode) ? policyNode.value : undefined
    if (!(READ_POLICIES as readonly unknown[]).includes(onRead)) fail(`${field}.on_read`, policyNode, `must be one of ${READ_POLICIES.join(', ')}`)

    checkOnDisk(path, create as boolean, (message) => fail(`${field}.path`, pathNode, message))
    sentinels.push({path, create: create as boolean, procedure: procedure as string, onRead: onRead as ReadPolicy, line: lineOf(item as Node)})
  })

  const readersNode = root.get('allow_readers', true) as Node | undefined
  const allowReaders: string[] = []
  if (readersNode !== undefined) {
    if (!isSeq(readersNode)) fail('allow_readers', readersNode, 'must be a list of absolute paths of executables')
    ;(readersNode as unknown as {items: Node[]}).items.forEach((reader, index) => {
      const value = isScalar(reader) ? reader.value : undefined
      if (typeof value !== 'string' || sentinelPathProblem(value)) fail(`allow_readers[${index}]`, reader, 'must be the absolute path of an executable')
      allowReaders.push(value as string)
    })
  }
  return {file, node, sentinels, fencing, defaultFencing, allowReaders}
}

/** An existing file must really be there; a file to create needs its directory. Neither may be a symlink. */
function checkOnDisk(path: string, create: boolean, fail: (message: string) => never): void {
  if (create) {
    let parent
    try {
      parent = lstatSync(dirname(path))
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') fail(`create: true needs the directory ${dirname(path)} to exist`)
      throw error
    }
    if (!parent.isDirectory()) fail(`${dirname(path)} is not a directory${parent.isSymbolicLink() ? ' (it is a symbolic link, which the agent never follows)' : ''}`)
    return
  }
  let stats
  try {
    stats = lstatSync(path)
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') fail(`create: false, but ${path} does not exist`)
    throw error
  }
  if (stats.isSymbolicLink()) fail(`${path} is a symbolic link; the agent never follows one`)
  if (!stats.isFile()) fail(`${path} is not a regular file`)
}

function rejectUnknownKeys(map: YAMLMap, allowed: Set<string>, prefix: string, fail: (field: string, node: Node | null | undefined, problem: string) => never): void {
  for (const pair of map.items) {
    const key = isScalar(pair.key) ? pair.key.value : pair.key
    if (typeof key !== 'string' || !allowed.has(key))
      fail(`${prefix}${String(key)}`, pair.key as Node, `unknown field (expected one of: ${[...allowed].join(', ')})`)
  }
}

function optionalString(
  map: YAMLMap,
  key: string,
  fail: (field: string, node: Node | null | undefined, problem: string) => never,
): string | undefined {
  const node = map.get(key, true) as Node | undefined
  if (node === undefined) return undefined
  const value = isScalar(node) ? node.value : undefined
  if (typeof value !== 'string' || value === '') return fail(key, node, 'must be a non-empty string')
  return value
}
