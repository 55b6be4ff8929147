import type {ProcedureRun} from '../fence/procedure-run.js'
import type {TamperReason} from '../sentinel/inspect-sentinel.js'

export type NodeState = 'ok' | 'tampered' | 'fencing' | 'fenced' | 'error'
export const NODE_STATES: readonly NodeState[] = ['ok', 'tampered', 'fencing', 'fenced', 'error']

export interface TrippedSentinel {
  path: string
  /** `manual` when an operator ran comet fence; `read` when fanotify caught a process opening it. */
  reason: TamperReason | 'manual' | 'read'
  detail: string
  /** The procedure this sentinel triggers. */
  procedure: string
  at: string
}

/** A process caught touching a sentinel (through fanotify): a reader frozen or denied, or a writer it let open. */
export interface SuspectProcess {
  pid: number
  ppid: number | null
  uid: number | null
  exe: string | null
  cmdline: string[]
  /** What the agent did to it: frozen (SIGSTOP), denied only, or nothing (it wrote to a sentinel it could open). */
  action: 'frozen' | 'denied' | 'allowed'
  /** CLOCK_MONOTONIC (ns) when the agent stopped it, for the freeze benchmark. */
  frozenAtMonotonicNs?: string
}

export interface Incident {
  id: string
  source: 'watch' | 'verify' | 'manual'
  startedAt: string
  /** Set when every procedure of the incident has ended. */
  endedAt?: string
  sentinels: TrippedSentinel[]
  procedures: ProcedureRun[]
  suspects?: SuspectProcess[]
}

export interface SentinelCounts {
  total: number
  intact: number
  tampered: number
  unrecorded: number
  unverifiable: number
}

/** `comet-status/<node>`: written by the agent only. */
export interface NodeStatus {
  node: string
  state: NodeState
  heartbeatAt?: string
  lastCheckAt?: string
  sentinels: SentinelCounts
  /** Metadata-only changes (mode, owner, mtime): seen, not fenced. */
  warnings: string[]
  /** Procedures that have run since the last reset (the latch). */
  fencedProcedures: string[]
  /** Procedures still running when the agent last reported. */
  runningProcedures: number
  incidentsTotal: number
  /** Procedure name -> how many times it was started. */
  fencingStarted: Record<string, number>
  lastIncidentAt?: string
  /** The most recent incidents, newest last. */
  incidents: Incident[]
  /** Why the agent is in the error state, or that it works from its local cache. */
  detail?: string
  agent?: {version: string; pid: number; mode: string; detector?: string}
}

/** A change to a node's status, spooled locally until the store has it. */
export type StatusReport =
  | {type: 'check'; at: string; counts: SentinelCounts; warnings: string[]; running: number; detail?: string; error?: boolean; agent?: NodeStatus['agent']}
  | {type: 'incident'; incident: Incident; fencedProcedures: string[]; running: number}
  | {type: 'reset'; at: string}
