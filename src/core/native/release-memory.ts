import {setFlagsFromString} from 'node:v8'
import {runInNewContext} from 'node:vm'

import {loadAddon} from './load-addon.js'

let collect: (() => void) | undefined

/**
 * For a resident agent after its start, which read and parsed tens of megabytes at 100 000 sentinels: a full
 * garbage collection now rather than whenever V8 gets to it, then the C heap's free pages given back to the
 * system (glibc keeps them otherwise; the checksum addon calls malloc_trim). Without it the agent would keep
 * its start-up peak as resident memory for the rest of its life.
 */
export function releaseMemory(): void {
  if (!collect) {
    // The documented way to reach V8's gc() without starting node with --expose-gc.
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  // Twice: the first leaves the young generation at the size the start-up grew it to; the second shrinks it.
  collect()
  collect()
  const state = loadAddon<{trimMemory(): boolean}>('checksum')
  if ('addon' in state) state.addon.trimMemory()
}
