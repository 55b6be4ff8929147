import {CasConflictError, CometError} from '../errors/index.js'
import {StorePaths, type KvStore} from '../store/store.js'
import {applyReport, emptyStatus} from './apply-report.js'
import type {NodeStatus, StatusReport} from './node-status.js'
import type {ReportSpool} from './report-spool.js'

export interface DeliveryResult {
  delivered: number
  pending: number
  error?: string
}

const CAS_ATTEMPTS = 5

/**
 * Delivers spooled reports to `comet-status/<node>` with a short timeout. Every report is spooled first and
 * removed only once the store has it; deliveries run one at a time, in order.
 */
export class StatusReporter {
  private queue: Promise<unknown> = Promise.resolve()
  lastError?: string

  constructor(
    private readonly store: KvStore,
    private readonly node: string,
    private readonly spool: ReportSpool,
    private readonly timeoutMs: number,
  ) {}

  /** Spools the report (durable on return), then tries to deliver everything pending. */
  submit(report: StatusReport): Promise<DeliveryResult> {
    this.spool.add(report)
    return this.flush()
  }

  flush(): Promise<DeliveryResult> {
    const run = this.queue.then(() => this.deliverPending())
    this.queue = run.catch(() => undefined)
    return run
  }

  private async deliverPending(): Promise<DeliveryResult> {
    const key = StorePaths.status(this.node)
    let pending: ReturnType<ReportSpool['pending']> = []
    try {
      pending = this.spool.pending()
      if (pending.length === 0) return {delivered: 0, pending: 0}
      for (let attempt = 1; ; attempt++) {
        const current = await this.store.read<NodeStatus>(key, {timeoutMs: this.timeoutMs})
        let status = current?.data ?? emptyStatus(this.node)
        for (const {report} of pending) status = applyReport(status, report)
        try {
          await this.store.write(key, status as unknown as Record<string, unknown>, {cas: current?.version ?? 0, timeoutMs: this.timeoutMs})
          break
        } catch (error) {
          if (!(error instanceof CasConflictError) || attempt >= CAS_ATTEMPTS) throw error
        }
      }
    } catch (error) {
      this.lastError = error instanceof CometError ? error.message : String(error)
      return {delivered: 0, pending: pending.length, error: this.lastError}
    }
    for (const {id} of pending) this.spool.remove(id)
    this.lastError = undefined
    return {delivered: pending.length, pending: this.spool.depth}
  }
}
