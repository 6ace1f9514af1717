import type { AfterCommitHook } from '../core/ports/metadata-store.js';

/**
 * Runs a committed transaction's after-commit hooks in order; a failing hook does not stop the others and does not
 * undo the commit: its error goes to `onError`. Shared by every metadata store.
 */
export async function runAfterCommitHooks(hooks: readonly AfterCommitHook[], onError: (error: unknown) => void): Promise<void> {
  for (const hook of hooks) {
    try {
      await hook();
    } catch (e) {
      onError(e);
    }
  }
}
