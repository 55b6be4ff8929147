/**
 * Fencing must not wait on Vault. Detection-to-fence latency of `comet watch --store vault` with Vault up, and
 * with Vault black-holed (a socket that accepts and never answers), measured in the same run: the second must
 * stay within 10 % of the first.
 */
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {blackHole, VaultServer} from '../test/support/vault-server.js'
import {measureComet, type LatencyFigures} from './detect-to-fence.js'
import {monostamp, round} from './support.js'

export interface VaultBlackholeResult {
  vaultUp: LatencyFigures
  vaultBlackHoled: LatencyFigures
  p50Ratio: number
  p99Ratio: number
  targets: {p50RatioMax: number; met: boolean}
}

export async function benchVaultBlackhole(trials = 200): Promise<VaultBlackholeResult> {
  const stamp = monostamp()
  const root = mkdtempSync(join(tmpdir(), 'comet-bench-vault-'))
  const vault = await VaultServer.start(join(root, 'vault'))
  const hole = await blackHole()
  try {
    const up = {COMET_STORE: 'vault', VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken}
    const upRoot = join(root, 'up')
    const holeRoot = join(root, 'hole')
    mkdirSync(upRoot)
    mkdirSync(holeRoot)
    const vaultUp = await measureComet(upRoot, stamp, trials, {...up, COMET_NODE: 'bench-up'}, {...up, COMET_NODE: 'bench-up'})
    // init needs Vault; the agent then runs against the black hole, from its local cache.
    const vaultBlackHoled = await measureComet(holeRoot, stamp, trials, {...up, COMET_NODE: 'bench-hole'}, {...up, COMET_NODE: 'bench-hole', VAULT_ADDR: hole.address, COMET_READ_TIMEOUT_MS: '1000'})
    const p50Ratio = round(vaultBlackHoled.p50Ms / vaultUp.p50Ms, 2)
    return {vaultUp, vaultBlackHoled, p50Ratio, p99Ratio: round(vaultBlackHoled.p99Ms / vaultUp.p99Ms, 2), targets: {p50RatioMax: 1.1, met: p50Ratio <= 1.1}}
  } finally {
    await hole.close()
    await vault.stop()
    rmSync(root, {recursive: true, force: true})
  }
}
