import { SteleError } from '../../core/errors.js';

/** The memory driver's write lock: one holder per backend in this process. */
export class MemoryLock {
  private held = false;

  constructor(private readonly name: string) {}

  take(): () => void {
    if (this.held) throw new SteleError('locked', `the memory backend "${this.name}" is in use by another writer`);
    this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held = false;
    };
  }
}
