/** `npm run bench`: every benchmark, each against a baseline measured in the same run; a JSON summary at the end. */
import {writeFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'

import {benchDetectToFence} from './detect-to-fence.js'

const trials = Number(process.env.BENCH_TRIALS ?? 200)
const summary: Record<string, unknown> = {
  machine: {cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version},
  date: new Date().toISOString(),
}

process.stderr.write(`detection-to-fence latency, ${trials} trials each...\n`)
summary.detectToFence = await benchDetectToFence(trials)

const json = JSON.stringify(summary, null, 2)
if (process.env.BENCH_OUTPUT) writeFileSync(process.env.BENCH_OUTPUT, json + '\n')
process.stdout.write(json + '\n')
