/** A FIFO mutex: `acquire` resolves when the caller holds it; `release` hands it to the next waiter. */
export class Mutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];
  /** True while someone holds it. */
  get locked(): boolean {
    return this.held;
  }
  acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}
