import {hostname} from 'node:os'
import {join, resolve} from 'node:path'

import {UsageError} from '../errors/index.js'
import {isValidName} from '../store/store-path.js'

/** Everything the commands share, resolved once from flags and environment. */
export interface AgentOptions {
  /** `file:DIR` or `vault`. */
  storeSpec: string
  node: string
  /** Cache, latch, spool and procedure output live here, owner-only. */
  stateDir: string
  /** Reports of incidents and status: short, so that they never hold anything up. */
  reportTimeoutMs: number
  /** Topology reads may take longer. */
  readTimeoutMs: number
  /** A hung procedure is killed after this long. */
  procedureTimeoutMs: number
}

export interface OptionInputs {
  store?: string
  node?: string
  stateDir?: string
  reportTimeoutMs?: number
  readTimeoutMs?: number
  procedureTimeoutMs?: number
  /** The manifest's own `node:`, which wins when it agrees with --node. */
  manifestNode?: string
}

export const DEFAULT_REPORT_TIMEOUT_MS = 500
export const DEFAULT_READ_TIMEOUT_MS = 5000
export const DEFAULT_PROCEDURE_TIMEOUT_MS = 60_000

const isRoot = () => process.getuid?.() === 0

function userStateHome(env: NodeJS.ProcessEnv): string {
  if (env.XDG_STATE_HOME) return env.XDG_STATE_HOME
  if (!env.HOME) throw new UsageError('neither XDG_STATE_HOME nor HOME is set: pass --store file:DIR and --state-dir DIR')
  return join(env.HOME, '.local', 'state')
}

export function defaultStoreSpec(env: NodeJS.ProcessEnv = process.env): string {
  return isRoot() ? 'file:/var/lib/comet' : `file:${join(userStateHome(env), 'comet')}`
}

export function resolveOptions(inputs: OptionInputs, env: NodeJS.ProcessEnv = process.env): AgentOptions {
  const storeSpec = normaliseStoreSpec(inputs.store ?? env.COMET_STORE ?? defaultStoreSpec(env))
  const requested = inputs.node ?? env.COMET_NODE
  if (inputs.manifestNode && requested && inputs.manifestNode !== requested)
    throw new UsageError(`the manifest is for node ${inputs.manifestNode}, but --node/COMET_NODE says ${requested}`, {culprit: 'node'})
  const node = inputs.manifestNode ?? requested ?? hostname().split('.')[0]
  if (!isValidName(node)) throw new UsageError(`invalid node name ${JSON.stringify(node)}: use letters, digits, '.', '_' or '-'`, {culprit: 'node'})
  const stateDir = resolve(inputs.stateDir ?? env.COMET_STATE_DIR ?? (isRoot() ? '/var/lib/comet/agent' : join(userStateHome(env), 'comet', 'agent')))
  return {
    storeSpec,
    node,
    stateDir,
    reportTimeoutMs: positive(inputs.reportTimeoutMs ?? envNumber(env, 'COMET_REPORT_TIMEOUT_MS') ?? DEFAULT_REPORT_TIMEOUT_MS, 'report timeout'),
    readTimeoutMs: positive(inputs.readTimeoutMs ?? envNumber(env, 'COMET_READ_TIMEOUT_MS') ?? DEFAULT_READ_TIMEOUT_MS, 'read timeout'),
    procedureTimeoutMs: positive(inputs.procedureTimeoutMs ?? envNumber(env, 'COMET_PROCEDURE_TIMEOUT_MS') ?? DEFAULT_PROCEDURE_TIMEOUT_MS, 'procedure timeout'),
  }
}

function normaliseStoreSpec(spec: string): string {
  if (spec === 'vault') return spec
  if (spec.startsWith('file:') && spec.length > 'file:'.length) return `file:${resolve(spec.slice('file:'.length))}`
  throw new UsageError(`invalid store ${JSON.stringify(spec)}: use file:DIR or vault`, {culprit: 'store'})
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = env[name]
  if (value === undefined || value === '') return undefined
  const number = Number(value)
  if (!Number.isFinite(number)) throw new UsageError(`${name}=${value} is not a number`, {culprit: name})
  return number
}

function positive(value: number, what: string): number {
  if (!(value > 0)) throw new UsageError(`the ${what} must be positive, not ${value}`)
  return value
}
