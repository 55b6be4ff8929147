import type {AgentOptions} from '../config/agent-options.js'
import {ExitCode} from '../errors/index.js'
import {applyManifest, planManifest} from '../manifest/apply-manifest.js'
import type {Manifest} from '../manifest/manifest.js'
import type {DeliveryResult} from '../report/status-reporter.js'
import {createSentinel} from '../sentinel/create-sentinel.js'
import type {Finding} from '../sentinel/inspect-sentinel.js'
import {readSentinel} from '../sentinel/read-sentinel.js'
import {StorePaths} from '../store/store.js'
import {readTopology} from '../topology/read-topology.js'
import type {SentinelMode, Topology} from '../topology/topology.js'
import {recordChecksums} from './record-checksums.js'
import {AgentSession} from './session.js'
import type {Step} from './step.js'

export interface InitRequest {
  manifest?: Manifest
  dryRun?: boolean
}

export type SentinelAction = 'created' | 'recorded' | 'found' | 'tampered' | 'would-create' | 'would-record' | 'failed'

export interface InitSentinel {
  path: string
  mode: SentinelMode
  procedure: string
  action: SentinelAction
  checksum?: string
  detail?: string
}

export interface InitResult {
  node: string
  store: string
  dryRun: boolean
  /** Procedures written to (or, in a dry run, that would be written to) fencing/. */
  proceduresWritten: string[]
  sentinels: InitSentinel[]
  exitCode: ExitCode
  report?: DeliveryResult
}

export interface InitPlan {
  steps: Step[]
  result: () => InitResult
  close: () => Promise<void>
}

/**
 * `comet init`: store reachable, topology read (after loading the manifest, if any), sentinels created or
 * found, checksums recorded with check-and-set, procedures cached locally. A second run changes nothing; a
 * recorded sentinel that is gone or differs is reported as tampered, never re-created.
 */
export function planInit(options: AgentOptions, request: InitRequest = {}): InitPlan {
  const dryRun = request.dryRun === true
  // Assigned by the first step; later steps run only after it succeeded.
  let session!: AgentSession
  let topology: Topology
  let proceduresWritten: string[] = []
  const sentinels: InitSentinel[] = []
  let report: DeliveryResult | undefined
  const findings: Finding[] = []

  const steps: Step[] = [
    {
      title: 'Store reachable',
      run: async () => {
        session = await AgentSession.open(options, {readOnly: dryRun})
        // A node's own entry, not a listing: a node's Vault policy reaches nothing else.
        await session.store.read(StorePaths.comets(options.node), {timeoutMs: options.readTimeoutMs})
        return session.store.description
      },
    },
  ]
  if (request.manifest) {
    const manifest = request.manifest
    steps.push({
      title: `Manifest ${manifest.file} loaded into the store`,
      run: async () => {
        const changes = dryRun ? await planManifest(session.store, options.node, manifest, options.readTimeoutMs) : await applyManifest(session.store, options.node, manifest, options.readTimeoutMs)
        proceduresWritten = changes.procedures
        return `${changes.procedures.length} procedure(s) ${dryRun ? 'to write' : 'written'}, ${StorePaths.comets(options.node)} ${changes.cometsChanged ? (dryRun ? 'to update' : 'updated') : 'unchanged'}`
      },
    })
  }
  steps.push(
    {
      title: 'Topology read',
      run: async () => {
        if (dryRun && request.manifest) {
          const plan = await planManifest(session.store, options.node, request.manifest, options.readTimeoutMs)
          topology = {node: options.node, sentinels: plan.sentinels, procedures: request.manifest.fencing, allowReaders: plan.allowReaders}
        } else {
          topology = (await readTopology(session.store, options.node, options.readTimeoutMs)).topology
          session.adoptTopology(topology)
        }
        return `${topology.sentinels.length} sentinel(s), ${Object.keys(topology.procedures).length} procedure(s)`
      },
    },
    {
      title: 'Sentinels created or found',
      run: async () => {
        for (const sentinel of topology.sentinels) sentinels.push(plantOrFind(session, sentinel, dryRun, findings))
        if (sentinels.some((entry) => entry.action === 'created')) session.saveLocal()
        const count = (action: SentinelAction) => sentinels.filter((entry) => entry.action === action).length
        return `${count('created') + count('would-create')} created, ${count('found')} found, ${count('recorded') + count('would-record')} recorded, ${count('tampered')} tampered, ${count('failed')} failed`
      },
    },
    {
      title: 'Checksums recorded',
      run: async () => {
        const fresh = sentinels.filter((entry) => entry.action === 'created' || entry.action === 'recorded')
        if (dryRun || fresh.length === 0) return dryRun ? 'dry run: nothing written' : 'nothing new to record'
        topology = await recordChecksums(session, fresh.map((entry) => ({path: entry.path, mode: entry.mode, checksum: entry.checksum as string, previous: ''})))
        for (const entry of fresh) delete session.local.created[entry.path]
        return `${fresh.length} checksum(s) written to ${StorePaths.comets(options.node)}`
      },
    },
    {
      title: 'Procedures cached locally',
      run: async () => {
        if (dryRun) return 'dry run: nothing written'
        session.adoptTopology(topology)
        session.recordMissingBaselines(findings)
        session.saveLocal()
        const counts = sentinels.some((entry) => entry.action === 'failed') ? undefined : session.checkReport(findings, 'init')
        if (counts) report = await session.reporter.submit(counts)
        return session.paths.cache
      },
    },
  )
  return {
    steps,
    result: () => ({
      node: options.node,
      store: options.storeSpec,
      dryRun,
      proceduresWritten,
      sentinels,
      exitCode: sentinels.some((entry) => entry.action === 'failed') ? ExitCode.CannotCheck : sentinels.some((entry) => entry.action === 'tampered') ? ExitCode.Tampered : ExitCode.Ok,
      report,
    }),
    close: async () => {
      if (session) await session.close()
    },
  }
}

function plantOrFind(session: AgentSession, sentinel: Topology['sentinels'][number], dryRun: boolean, findings: Finding[]): InitSentinel {
  const base = {path: sentinel.path, mode: sentinel.mode, procedure: sentinel.procedure}
  if (sentinel.checksum !== '') {
    const finding = session.inspect(sentinel)
    findings.push(finding)
    if (finding.verdict === 'intact') return {...base, action: 'found', checksum: finding.checksum}
    if (finding.verdict === 'tampered') return {...base, action: 'tampered', detail: `${finding.reason}: ${finding.detail}`}
    return {...base, action: 'failed', detail: 'detail' in finding ? finding.detail : finding.verdict}
  }
  const reading = readSentinel(sentinel.path)
  const local = session.local
  if (sentinel.mode === 'create') {
    if (reading.kind === 'missing') {
      if (dryRun) return {...base, action: 'would-create'}
      try {
        const created = createSentinel(sentinel.path)
        // Journaled at once: a crash before the store hears of it must not orphan the file.
        session.noteCreated(sentinel.path, created.checksum)
        local.baselines.set(sentinel.path, created.identity)
        findings.push({path: sentinel.path, verdict: 'intact', checksum: created.checksum, identity: created.identity, warnings: []})
        return {...base, action: 'created', checksum: created.checksum}
      } catch (error) {
        return {...base, action: 'failed', detail: (error as Error).message}
      }
    }
    if (reading.kind === 'file' && local.created[sentinel.path] === reading.checksum) {
      findings.push({path: sentinel.path, verdict: 'intact', checksum: reading.checksum, identity: reading.identity, warnings: []})
      return {...base, action: dryRun ? 'would-record' : 'recorded', checksum: reading.checksum}
    }
    return {...base, action: 'failed', detail: `${sentinel.path} already exists${reading.kind === 'symlink' ? ' as a symbolic link' : ''} and comet did not create it: remove it, or declare it create: false to watch it as it is`}
  }
  if (reading.kind === 'file') {
    findings.push({path: sentinel.path, verdict: 'intact', checksum: reading.checksum, identity: reading.identity, warnings: []})
    return {...base, action: dryRun ? 'would-record' : 'recorded', checksum: reading.checksum}
  }
  const why = {missing: 'does not exist', symlink: 'is a symbolic link, which the agent never follows', 'not-a-file': 'is not a regular file', unreadable: 'cannot be read'}[reading.kind]
  return {...base, action: 'failed', detail: `${sentinel.path} ${why}`}
}
