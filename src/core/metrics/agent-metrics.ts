import {collectDefaultMetrics, Counter, Gauge, Histogram, Registry} from 'prom-client'

import type {WatchObserver} from '../agent/watch.js'

/** `comet watch --metrics-listen`: the agent's own view, for the node it runs on. */
export class AgentMetrics implements WatchObserver {
  readonly registry = new Registry()
  private readonly checks: Counter
  private readonly detections: Counter<'procedure'>
  private readonly latency: Histogram<'procedure'>
  private readonly spoolDepth: Gauge
  private readonly storeUp: Gauge
  private readonly sentinels: Gauge<'state'>

  constructor(node: string) {
    this.registry.setDefaultLabels({node})
    collectDefaultMetrics({register: this.registry})
    // prom-client names these gauges *_total, which the Prometheus naming rules (and promtool) reserve for counters.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name)
    const registers = [this.registry]
    this.checks = new Counter({name: 'comet_agent_checks_total', help: 'Full verifies of every sentinel (at start, then every interval).', registers})
    this.detections = new Counter({name: 'comet_agent_detections_total', help: 'Procedures started because a sentinel tripped.', labelNames: ['procedure'], registers})
    this.latency = new Histogram({
      name: 'comet_agent_detection_to_fence_seconds',
      help: 'From the inotify event to the fencing procedure handed to the launcher.',
      labelNames: ['procedure'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1],
      registers,
    })
    this.spoolDepth = new Gauge({name: 'comet_agent_spool_reports', help: 'Reports waiting in the local spool for the store.', registers})
    this.storeUp = new Gauge({name: 'comet_agent_store_up', help: '1 when the last report reached the store, else 0.', registers})
    this.sentinels = new Gauge({name: 'comet_agent_sentinels', help: 'Sentinels by their state at the last full verify.', labelNames: ['state'], registers})
  }

  /** Every procedure has its series from the start, at 0, so that rate() and increase() see the first detection. */
  knownProcedures(names: string[]): void {
    for (const procedure of names) {
      this.detections.inc({procedure}, 0)
      this.latency.zero({procedure})
    }
  }

  onCheck(counts: {intact: number; tampered: number; total: number}): void {
    this.checks.inc()
    this.sentinels.set({state: 'intact'}, counts.intact)
    this.sentinels.set({state: 'tampered'}, counts.tampered)
    this.sentinels.set({state: 'other'}, counts.total - counts.intact - counts.tampered)
  }

  onDetection(latencySeconds: number, procedure: string): void {
    this.detections.inc({procedure})
    this.latency.observe({procedure}, latencySeconds)
  }

  onReport(delivered: boolean, spoolDepth: number): void {
    this.storeUp.set(delivered ? 1 : 0)
    this.spoolDepth.set(spoolDepth)
  }
}
