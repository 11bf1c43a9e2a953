/**
 * FdHandle: the common part of BpfMap and BpfProgram. Holds one fd the addon handed out (the
 * addon tracks it and closes it at env teardown if close() is never called); using a closed
 * handle is a BpfError with errno EBADF.
 */
import { native } from './addon';
import { BpfError } from './errors';
import { checkAbsPath } from './validate';

export abstract class FdHandle {
  #fd: number;

  protected constructor(fd: number, private readonly closedCode: string) {
    this.#fd = fd;
  }

  /** What to call this handle in messages ("map tn_flows"). */
  protected abstract describe(): string;

  get fd(): number {
    if (this.#fd < 0) throw new BpfError(this.closedCode, 'fd', 9, `${this.describe()} is closed`);
    return this.#fd;
  }

  get closed(): boolean { return this.#fd < 0; }

  /** Pins the object at `path` on bpffs (the pin keeps it alive after this process). */
  pin(path: string): void {
    native().objPin(this.fd, checkAbsPath('pin path', path));
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    native().fdClose(fd);
  }
}

/** Builds a handle around a fresh addon-owned fd, closing the fd if that fails. */
export function adoptFd<T>(fd: number, make: (fd: number) => T): T {
  try {
    return make(fd);
  } catch (e) {
    native().fdClose(fd);
    throw e;
  }
}
