import {UsageError} from '../errors/index.js'
import type {KvStore} from './store.js'

/** Placeholder until the Vault issue lands: a clear refusal rather than a silent fallback. */
export class VaultStore {
  static fromEnvironment(_env: NodeJS.ProcessEnv): KvStore {
    throw new UsageError('the Vault store is not available in this build yet; use --store file:DIR', {culprit: 'store'})
  }
}
