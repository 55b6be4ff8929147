/**
 * `npm run bench`: every benchmark, each against a baseline measured in the same run; a JSON summary at the end.
 * BENCH_ONLY=latency,vault,freeze,drills,scale,export picks some; BENCH_OUTPUT=FILE also writes the summary there.
 */
import {writeFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'

import {benchDetectToFence} from './detect-to-fence.js'
import {benchDrills} from './drills/run-drills.js'
import {benchExportScrape} from './export-scrape.js'
import {benchFanotifyFreeze} from './fanotify-freeze.js'
import {benchScale} from './scale.js'
import {benchVaultBlackhole} from './vault-blackhole.js'

const only = new Set((process.env.BENCH_ONLY ?? 'latency,vault,freeze,drills,scale,export').split(',').map((name) => name.trim()))
const summary: Record<string, unknown> = {
  machine: {cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version},
  date: new Date().toISOString(),
}
const say = (message: string) => process.stderr.write(`${message}\n`)

if (only.has('latency')) {
  const trials = Number(process.env.BENCH_TRIALS ?? 200)
  say(`detection-to-fence latency, ${trials} trials each (comet watch, and inotifywait piped to a shell loop)...`)
  summary.detectToFence = await benchDetectToFence(trials)
}
if (only.has('vault')) {
  const trials = Number(process.env.BENCH_VAULT_TRIALS ?? process.env.BENCH_TRIALS ?? 200)
  say(`detection-to-fence latency with Vault up and with Vault black-holed, ${trials} trials each...`)
  summary.vaultBlackhole = await benchVaultBlackhole(trials)
}
if (only.has('freeze')) {
  const trials = Number(process.env.BENCH_TRIALS ?? 200)
  say(`fanotify: open() of a sentinel to the reader frozen, ${trials} trials...`)
  summary.fanotifyFreeze = await benchFanotifyFreeze(trials)
}
if (only.has('drills')) {
  const files = Number(process.env.BENCH_DRILL_FILES ?? 10_000)
  const runs = Number(process.env.BENCH_DRILL_RUNS ?? 10)
  say(`ransomware drills: ${files} files, ${runs} runs per variant and rate...`)
  summary.drills = await benchDrills({files, runs})
}
if (only.has('scale')) {
  const sentinels = Number(process.env.BENCH_SCALE_SENTINELS ?? 100_000)
  say(`scale: ${sentinels} sentinels (comet verify against sha256sum -c and aide --check; comet watch memory and CPU)...`)
  summary.scale = await benchScale(sentinels)
}

if (only.has('export')) {
  say('comet export: scrape duration and memory at 1 000 and 10 000 nodes in an embedded store...')
  summary.exportScrape = await benchExportScrape()
}

const json = JSON.stringify(summary, null, 2)
if (process.env.BENCH_OUTPUT) writeFileSync(process.env.BENCH_OUTPUT, json + '\n')
process.stdout.write(json + '\n')
