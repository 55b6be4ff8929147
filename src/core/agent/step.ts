/** One visible step of a longer use case; the command layer shows these as a task list. */
export interface Step {
  title: string
  /** Returns a short note for the task list (what it found or did). */
  run: () => Promise<string | void>
}

export async function runSteps(steps: Step[]): Promise<void> {
  for (const step of steps) await step.run()
}
