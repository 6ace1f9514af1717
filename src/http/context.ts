import type { AppContext } from '../context.js';

/** Everything a route file needs: the process's {@link AppContext} plus what only HTTP knows. */
export interface ApiContext extends AppContext {
  /** The public base URL (no trailing slash); known only once the server listens. */
  publicUrl(): string;
}
