/**
 * `comet export` at fleet scale: 1 000 and 10 000 nodes (comets/<node> and comet-status/<node> in the seed's
 * layout) in an embedded store and in a real Vault (file storage, KV v2), scraped a few times. Reports the scrape
 * time (median, as Prometheus sees it, and the exporter's own comet_scrape_duration_seconds) and the exporter's
 * resident memory, both when the fleet is read at scrape time and with --refresh (a snapshot refreshed in the
 * background). Baseline in the same run: a plain loop that lists comets/ and reads and parses the same documents
 * at the same concurrency (fs.readFile for the embedded store, fetch() of Vault's HTTP API for Vault), the floor
 * for any exporter reading the store at scrape time.
 *
 *   node dist/bench/export-scrape.js     (after npm run build) prints the JSON summary
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {readdir, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {freePort, VaultServer} from '../test/support/vault-server.js'
import {mapLimit} from '../src/core/metrics/map-limit.js'
import {emptyStatus} from '../src/core/report/apply-report.js'
import type {NodeStatus} from '../src/core/report/node-status.js'
import {EmbeddedStore} from '../src/core/store/embedded.js'
import {StorePaths, type KvStore} from '../src/core/store/store.js'
import {VaultStore, vaultSettingsFromEnvironment} from '../src/core/store/vault.js'
import {percentile, round, RUN_JS, waitFor} from './support.js'

export type ExportBackend = 'embedded' | 'vault'

export interface ExportScrapeFigures {
  store: ExportBackend
  nodes: number
  /** 0: the fleet is read at every scrape; else comet export --refresh, a snapshot this many seconds old at most. */
  refreshSeconds: number
  scrapes: number
  seedSeconds: number
  /** Client side: from the request to the last byte of /metrics, as Prometheus waits for it. */
  scrapeMsMedian: number
  scrapeMsMax: number
  /** The exporter's comet_scrape_duration_seconds: reading the fleet from the store, without rendering. */
  storeReadMsMedian: number
  bodyKiB: number
  rssMiB: number
  peakRssMiB: number
  /** fs.readFile (embedded) or fetch() from Vault, + JSON.parse of the same documents, same concurrency. */
  baselineMsMedian: number
  ratio: number
}

export interface ExportScrapeResult {
  concurrency: number
  runs: ExportScrapeFigures[]
}

const CONCURRENCY = 32
const SENTINELS_PER_NODE = 3
const FENCED_EVERY = 100

const REFRESH_SECONDS = 15

export async function benchExportScrape(sizes: number[] = [1_000, 10_000], scrapes = 5, backends: ExportBackend[] = ['embedded', 'vault']): Promise<ExportScrapeResult> {
  const runs: ExportScrapeFigures[] = []
  for (const backend of backends) for (const nodes of sizes) runs.push(...(await measure(backend, nodes, scrapes)))
  return {concurrency: CONCURRENCY, runs}
}

/** One store seeded with `nodes` nodes, then comet export against it read at scrape time, and with --refresh. */
async function measure(backend: ExportBackend, nodes: number, scrapes: number): Promise<ExportScrapeFigures[]> {
  const root = mkdtempSync(join(tmpdir(), 'comet-bench-export-'))
  let vault: VaultServer | undefined
  try {
    let storeEnv: NodeJS.ProcessEnv
    let store: KvStore
    if (backend === 'vault') {
      vault = await VaultServer.start(join(root, 'vault'))
      storeEnv = {COMET_STORE: 'vault', VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken}
      store = new VaultStore({...vaultSettingsFromEnvironment(storeEnv), defaultTimeoutMs: 30_000})
    } else {
      storeEnv = {COMET_STORE: `file:${join(root, 'store')}`}
      store = new EmbeddedStore(join(root, 'store'))
    }
    const seedStarted = process.hrtime.bigint()
    await seed(store, nodes)
    await store.close()
    const seedSeconds = Number(process.hrtime.bigint() - seedStarted) / 1e9
    const baselineRead = backend === 'vault' ? () => vaultBaselineRead(vault!) : () => embeddedBaselineRead(join(root, 'store'))
    const figures: ExportScrapeFigures[] = []
    for (const refreshSeconds of [0, REFRESH_SECONDS]) {
      figures.push(await scrapeExporter({backend, nodes, scrapes, refreshSeconds, seedSeconds, root, storeEnv, baselineRead}))
    }
    return figures
  } finally {
    await vault?.stop()
    rmSync(root, {recursive: true, force: true})
  }
}

interface ScrapeSetup {
  backend: ExportBackend
  nodes: number
  scrapes: number
  refreshSeconds: number
  seedSeconds: number
  root: string
  storeEnv: NodeJS.ProcessEnv
  baselineRead: () => Promise<number>
}

async function scrapeExporter({backend, nodes, scrapes, refreshSeconds, seedSeconds, root, storeEnv, baselineRead}: ScrapeSetup): Promise<ExportScrapeFigures> {
  let exporter: ChildProcess | undefined
  try {
    const port = await freePort()
    const refresh = refreshSeconds > 0 ? ['--refresh', String(refreshSeconds)] : []
    exporter = spawn(process.execPath, [RUN_JS, 'export', '--listen', `127.0.0.1:${port}`, '--concurrency', String(CONCURRENCY), ...refresh], {
      env: {...process.env, ...storeEnv, COMET_STATE_DIR: join(root, 'state'), COMET_NODE: 'exporter', COMET_READ_TIMEOUT_MS: '30000'},
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let log = ''
    exporter.stderr!.on('data', (chunk) => (log += chunk))
    await waitFor('comet export to serve', () => log.includes('serving fleet metrics') || exporter!.exitCode !== null, 60_000)
    if (exporter.exitCode !== null) throw new Error(`comet export exited ${exporter.exitCode}: ${log}`)

    const url = `http://127.0.0.1:${port}/metrics`
    const warm = await scrape(url)
    const defined = Number(/^comet_nodes (\d+)$/m.exec(warm.body)?.[1])
    if (defined !== nodes) throw new Error(`the exporter reports comet_nodes ${defined}, expected ${nodes}`)
    const fenced = (warm.body.match(/^comet_node_state\{node="[^"]+",state="fenced"\} 1$/gm) ?? []).length
    if (fenced !== Math.ceil(nodes / FENCED_EVERY)) throw new Error(`the exporter reports ${fenced} fenced nodes, expected ${Math.ceil(nodes / FENCED_EVERY)}`)

    const times: number[] = []
    const storeReads: number[] = []
    let bodyBytes = 0
    for (let index = 0; index < scrapes; index++) {
      const result = await scrape(url)
      times.push(result.ms)
      storeReads.push(Number(/^comet_scrape_duration_seconds (\S+)$/m.exec(result.body)?.[1]) * 1000)
      bodyBytes = Buffer.byteLength(result.body)
    }
    const memory = processMemory(exporter.pid as number)

    await baselineRead() // warm-up, as the exporter's first scrape was
    const baseline: number[] = []
    for (let index = 0; index < scrapes; index++) baseline.push(await baselineRead())

    const scrapeMsMedian = percentile(times, 50)
    const baselineMsMedian = percentile(baseline, 50)
    return {
      store: backend,
      nodes,
      refreshSeconds,
      scrapes,
      seedSeconds: round(seedSeconds, 1),
      scrapeMsMedian: round(scrapeMsMedian, 1),
      scrapeMsMax: round(Math.max(...times), 1),
      storeReadMsMedian: round(percentile(storeReads, 50), 1),
      bodyKiB: Math.round(bodyBytes / 1024),
      rssMiB: memory.rssMiB,
      peakRssMiB: memory.peakRssMiB,
      baselineMsMedian: round(baselineMsMedian, 1),
      ratio: round(scrapeMsMedian / baselineMsMedian, 2),
    }
  } finally {
    if (exporter && exporter.exitCode === null && exporter.signalCode === null) {
      const exited = new Promise((resolve) => exporter!.once('exit', resolve))
      exporter.kill('SIGTERM')
      await exited
    }
  }
}

/** comets/<node> with three sentinels and their procedure; comet-status/<node> as an agent leaves it; 1 % fenced. */
async function seed(store: KvStore, nodes: number): Promise<void> {
  const now = Date.now()
  await mapLimit(Array.from({length: nodes}, (_, index) => index), CONCURRENCY, async (index) => {
    const node = `node${String(index).padStart(5, '0')}`
    const comets: Record<string, string> = {}
    for (let sentinel = 0; sentinel < SENTINELS_PER_NODE; sentinel++) {
      const path = `/srv/data${sentinel}/.~lock.ledger-${sentinel}.ods#`
      comets[`${node}:${sentinel === 0 ? 'already_present' : 'create'}:${path}`] = randomBytes(32).toString('hex')
      comets[`${node}:fencing_procedure:${path}`] = 'stop_db'
    }
    await store.write(StorePaths.comets(node), comets)
    const at = new Date(now - (index % 60) * 1000).toISOString()
    const status: NodeStatus = {
      ...emptyStatus(node),
      heartbeatAt: at,
      lastCheckAt: at,
      sentinels: {total: SENTINELS_PER_NODE, intact: SENTINELS_PER_NODE, tampered: 0, unrecorded: 0, unverifiable: 0},
      agent: {version: '0.1.0', pid: 1000 + index, mode: 'watch', detector: 'inotify'},
    }
    if (index % FENCED_EVERY === 0) {
      const startedAt = new Date(now - 3600_000).toISOString()
      const path = `/srv/data1/.~lock.ledger-1.ods#`
      Object.assign(status, {
        state: 'fenced',
        sentinels: {...status.sentinels, intact: SENTINELS_PER_NODE - 1, tampered: 1},
        fencedProcedures: ['stop_db'],
        incidentsTotal: 1,
        fencingStarted: {stop_db: 1},
        lastIncidentAt: startedAt,
        incidents: [
          {
            id: `inc-${node}`,
            source: 'watch',
            startedAt,
            endedAt: startedAt,
            sentinels: [{path, reason: 'modified', detail: 'sha256 changed', procedure: 'stop_db', at: startedAt}],
            procedures: [],
          },
        ],
      } satisfies Partial<NodeStatus>)
    }
    await store.write(StorePaths.status(node), status as unknown as Record<string, unknown>)
  })
}

async function scrape(url: string): Promise<{ms: number; body: string}> {
  const started = process.hrtime.bigint()
  const response = await fetch(url)
  const body = await response.text()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (!response.ok) throw new Error(`${url}: ${response.status} ${body.slice(0, 500)}`)
  return {ms, body}
}

/** The floor for Vault: LIST comets/, then GET and parse both documents of every node, CONCURRENCY at a time, with fetch(). */
async function vaultBaselineRead(vault: VaultServer): Promise<number> {
  const started = process.hrtime.bigint()
  const headers = {'X-Vault-Token': vault.rootToken}
  const get = async (path: string) => {
    const response = await fetch(`${vault.address}/v1/secret/${path}`, {headers})
    if (!response.ok) throw new Error(`GET ${path}: ${response.status}`)
    return response.json() as Promise<any>
  }
  const names: string[] = (await get('metadata/comets?list=true')).data.keys
  let sentinels = 0
  await mapLimit(names, CONCURRENCY, async (node) => {
    const [comets] = await Promise.all([get(`data/comets/${node}`), get(`data/comet-status/${node}`)])
    sentinels += Object.keys(comets.data.data).length
  })
  if (sentinels === 0) throw new Error('the baseline read nothing')
  return Number(process.hrtime.bigint() - started) / 1e6
}

/** The floor for the embedded store: list comets/, then read and parse both documents of every node, CONCURRENCY at a time. */
async function embeddedBaselineRead(storeDir: string): Promise<number> {
  const started = process.hrtime.bigint()
  const names = (await readdir(join(storeDir, 'comets'))).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length))
  let next = 0
  let sentinels = 0
  const worker = async () => {
    while (next < names.length) {
      const node = names[next++]
      const [comets, status] = await Promise.all([readFile(join(storeDir, 'comets', `${node}.json`), 'utf8'), readFile(join(storeDir, 'comet-status', `${node}.json`), 'utf8')])
      sentinels += Object.keys(JSON.parse(comets).data).length
      JSON.parse(status)
    }
  }
  await Promise.all(Array.from({length: Math.min(CONCURRENCY, names.length)}, worker))
  if (sentinels === 0) throw new Error('the baseline read nothing')
  return Number(process.hrtime.bigint() - started) / 1e6
}

function processMemory(pid: number): {rssMiB: number; peakRssMiB: number} {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1])
  return {rssMiB: round(kib('VmRSS') / 1024, 1), peakRssMiB: round(kib('VmHWM') / 1024, 1)}
}


if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(JSON.stringify(await benchExportScrape(), null, 2) + '\n')
}
