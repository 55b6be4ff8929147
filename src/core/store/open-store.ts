import type {AgentOptions} from '../config/agent-options.js'
import {UsageError} from '../errors/index.js'
import {EmbeddedStore} from './embedded.js'
import type {KvStore} from './store.js'

export async function openStore(options: Pick<AgentOptions, 'storeSpec'>, env: NodeJS.ProcessEnv = process.env): Promise<KvStore> {
  if (options.storeSpec.startsWith('file:')) return new EmbeddedStore(options.storeSpec.slice('file:'.length))
  if (options.storeSpec === 'vault') {
    const {VaultStore} = await import('./vault.js')
    return VaultStore.fromEnvironment(env)
  }
  throw new UsageError(`unknown store ${options.storeSpec}`)
}
