import {closeSync, constants, fstatSync, openSync, readFileSync} from 'node:fs'
import createVaultClient from 'node-vault'

import {CasConflictError, CometError, StoreUnavailableError, UsageError} from '../errors/index.js'
import {redact} from '../errors/redact.js'
import {assertPrivateFd} from '../files/private-path.js'
import type {KvStore, StoreCallOptions, StoredDocument, WriteOptions} from './store.js'
import {assertStorePath} from './store-path.js'

export interface VaultSettings {
  /** VAULT_ADDR. */
  address: string
  /** VAULT_TOKEN; when absent, AppRole with the two files below. */
  token?: string
  roleIdFile: string
  secretIdFile: string
  approleMount: string
  /** VAULT_NAMESPACE (Vault Enterprise). */
  namespace?: string
  /** VAULT_CACERT: a PEM file of CA certificates. */
  caCert?: string
  /** The KV v2 mount, `secret` by default. */
  mount: string
  /** A bound for calls that do not set their own. */
  defaultTimeoutMs: number
}

export function vaultSettingsFromEnvironment(env: NodeJS.ProcessEnv): VaultSettings {
  const address = env.VAULT_ADDR
  if (!address) throw new UsageError('--store vault needs VAULT_ADDR (e.g. https://oort.example:8200)', {culprit: 'VAULT_ADDR'})
  if (!/^https?:\/\/[^/]+/.test(address)) throw new UsageError(`VAULT_ADDR=${address} is not an http(s) URL`, {culprit: 'VAULT_ADDR'})
  const mount = env.COMET_VAULT_MOUNT ?? 'secret'
  assertStorePath(mount)
  return {
    address: address.replace(/\/+$/, ''),
    token: env.VAULT_TOKEN || undefined,
    roleIdFile: env.COMET_VAULT_ROLE_ID_FILE ?? '/etc/comet/role_id',
    secretIdFile: env.COMET_VAULT_SECRET_ID_FILE ?? '/etc/comet/secret_id',
    approleMount: env.COMET_VAULT_APPROLE_MOUNT ?? 'approle',
    namespace: env.VAULT_NAMESPACE || undefined,
    caCert: env.VAULT_CACERT || undefined,
    mount,
    defaultTimeoutMs: 5000,
  }
}

type VaultClient = ReturnType<typeof createVaultClient>

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNABORTED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ERR_CANCELED', 'ERR_SOCKET_CONNECTION_TIMEOUT'])

/**
 * Vault's KV v2 behind the store interface: `comets/<node>` is `<mount>/data/comets/<node>`. Errors never carry
 * the token: messages are built here from status codes and error codes, not from the client's error objects.
 */
export class VaultStore implements KvStore {
  readonly description: string
  private readonly client: VaultClient
  private login?: Promise<void>

  constructor(private readonly settings: VaultSettings) {
    this.description = `vault:${settings.address}/${settings.mount}`
    this.client = createVaultClient({
      apiVersion: 'v1',
      endpoint: settings.address,
      token: settings.token,
      namespace: settings.namespace,
      requestOptions: settings.caCert ? {ca: readFileSync(settings.caCert)} : {},
    })
    // A renewal that fails is not fatal: the next call logs in again (AppRole) or reports the 403.
    this.client.on('token:error:renew', () => {})
    this.client.on('token:expired', () => (this.login = undefined))
  }

  static fromEnvironment(env: NodeJS.ProcessEnv): VaultStore {
    return new VaultStore(vaultSettingsFromEnvironment(env))
  }

  async read<T = Record<string, unknown>>(path: string, options: StoreCallOptions = {}): Promise<StoredDocument<T> | null> {
    const body = await this.call(path, options, (timeout) => this.client.read(`${this.settings.mount}/data/${this.keyOf(path)}`, {timeout}), true)
    if (body === null) return null
    const data = body?.data?.data
    const version = body?.data?.metadata?.version
    if (data === null || data === undefined) return null // a deleted version reads as absent
    if (typeof data !== 'object' || Array.isArray(data) || !Number.isInteger(version))
      throw new CometError(`Vault returned an unexpected answer for ${path} (not a KV v2 document: is ${this.settings.mount}/ a KV version 2 mount?)`, {culprit: path})
    return {data: data as T, version}
  }

  async write(path: string, data: Record<string, unknown>, options: WriteOptions = {}): Promise<number> {
    const payload = options.cas === undefined ? {data} : {data, options: {cas: options.cas}}
    const body = await this.call(path, options, (timeout) => this.client.write(`${this.settings.mount}/data/${this.keyOf(path)}`, payload, {timeout}), false)
    const version = body?.data?.version
    if (!Number.isInteger(version)) throw new CometError(`Vault did not confirm the write of ${path}`, {culprit: path})
    return version
  }

  async list(folder: string, options: StoreCallOptions = {}): Promise<string[]> {
    const body = await this.call(folder, options, (timeout) => this.client.list(`${this.settings.mount}/metadata/${this.keyOf(folder)}`, {timeout}), true)
    const keys: unknown = body?.data?.keys ?? []
    if (!Array.isArray(keys)) throw new CometError(`Vault returned an unexpected listing for ${folder}`, {culprit: folder})
    return keys.filter((key): key is string => typeof key === 'string' && !key.endsWith('/')).sort()
  }

  async close(): Promise<void> {
    this.client.stopTokenRenewal()
  }

  private keyOf(path: string): string {
    return assertStorePath(path).join('/')
  }

  /** One call with a hard deadline; 404 reads as null where `absentIsNull`. Logs in (AppRole) first when needed, and again once if the token was refused. */
  private async call(key: string, options: StoreCallOptions, request: (timeout: number) => Promise<any>, absentIsNull: boolean): Promise<any> {
    const timeout = options.timeoutMs ?? this.settings.defaultTimeoutMs
    const deadline = Date.now() + timeout
    for (let attempt = 1; ; attempt++) {
      try {
        await withDeadline(this.ensureLogin(timeout), timeout, this.settings.address)
        const remaining = Math.max(1, deadline - Date.now())
        return await withDeadline(request(remaining), remaining, this.settings.address)
      } catch (error) {
        const status = (error as {response?: {statusCode?: number}}).response?.statusCode
        if (status === 404 && absentIsNull) return null
        if (status === 403 && !this.settings.token && attempt === 1) {
          this.login = undefined
          continue
        }
        throw this.translate(error, key)
      }
    }
  }

  private ensureLogin(timeout: number): Promise<void> {
    if (this.settings.token) return Promise.resolve()
    this.login ??= this.appRoleLogin(timeout).catch((error) => {
      this.login = undefined
      throw error
    })
    return this.login
  }

  private async appRoleLogin(timeout: number): Promise<void> {
    const roleId = readCredential(this.settings.roleIdFile)
    const secretId = readCredential(this.settings.secretIdFile)
    const result = await this.client.approleLogin({mount_point: this.settings.approleMount, role_id: roleId, secret_id: secretId, timeout})
    const ttl = result?.auth?.lease_duration
    if (result?.auth?.renewable && ttl > 0) void this.client.startTokenRenewal({ttl}).catch(() => {})
  }

  private translate(error: unknown, key: string): Error {
    if (error instanceof CometError) return error
    const where = `${this.settings.address} (${key})`
    const response = (error as {response?: {statusCode?: number; body?: {errors?: unknown[]}}}).response
    if (response?.statusCode !== undefined) {
      const status = response.statusCode
      const detail = (response.body?.errors ?? []).filter((entry) => typeof entry === 'string').join('; ')
      if (status === 400 && /check-and-set/.test(detail)) return new CasConflictError(key)
      if (status === 403) return new CometError(`Vault refused access to ${key} (403 permission denied): the token or AppRole's policy does not cover it`, {culprit: key})
      if (status === 503) return new StoreUnavailableError(`Vault at ${where} is sealed or unavailable (503)`, {culprit: this.settings.address})
      if (status === 429 || status >= 500) return new StoreUnavailableError(`Vault at ${where} answered ${status}${detail ? `: ${detail}` : ''}`, {culprit: this.settings.address})
      return new CometError(`Vault refused ${key} (${status}${detail ? `: ${detail}` : ''})`, {culprit: key})
    }
    const code = (error as {code?: string}).code
    if (code && UNREACHABLE.has(code)) return new StoreUnavailableError(`Vault at ${where} is unreachable (${code === 'ECONNABORTED' ? 'timed out' : code})`, {culprit: this.settings.address})
    return new StoreUnavailableError(`Vault at ${where} failed: ${redact((error as Error).message ?? String(error))}`, {culprit: this.settings.address})
  }
}

class DeadlineError extends StoreUnavailableError {}

/** The client's own timeout covers an idle socket; this also bounds a server that trickles or a login that hangs. */
function withDeadline<T>(promise: Promise<T>, ms: number, address: string): Promise<T> {
  let timer: NodeJS.Timeout
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`Vault at ${address} did not answer within ${ms} ms`, {culprit: address})), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** Credentials are read only from owner-only files that are not symlinks. */
function readCredential(file: string): string {
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (error) {
    throw new UsageError(`cannot read the AppRole credential ${file} (${(error as NodeJS.ErrnoException).code}); set VAULT_TOKEN, or COMET_VAULT_ROLE_ID_FILE and COMET_VAULT_SECRET_ID_FILE`, {culprit: file})
  }
  try {
    assertPrivateFd(file, fd)
    const mode = fstatSync(fd).mode
    if ((mode & 0o077) !== 0) throw new UsageError(`the AppRole credential ${file} is readable by other users (mode ${(mode & 0o777).toString(8)}): chmod 600 ${file}`, {culprit: file})
    const value = readFileSync(fd, 'utf8').trim()
    if (!value) throw new UsageError(`the AppRole credential ${file} is empty`, {culprit: file})
    return value
  } finally {
    closeSync(fd)
  }
}
