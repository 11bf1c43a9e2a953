/**
 * Atoms — calc graph node: the reference-counted set of atoms the live tables need.
 *
 *   TableContexts.create / destroy ──acquire(needs) / release(needs)──> Atoms
 *        selector atoms ──first / last reference──> LabelIndex.addSelector / removeSelector
 *        named-port atoms (selector + port name) ──> LabelIndex.addNamedPort / removeNamedPort
 *        CIDR atoms ──────────────────────────────> ClassIndex.addCidrAtom / removeCidrAtom
 *
 * An atom is what a class signature is made of: a rule-side selector (`s:` id), a named port over
 * such a selector (`n:`), or a rule CIDR (`c:`) — ids from rules.ts.
 *
 * Contract: every acquire has one matching release (table contexts release exactly what they
 * acquired); an atom exists from its first acquire to its last release, and its index entries
 * (label index, prefix node, cached hash) with it. A named-port atom holds a reference on its
 * selector atom. Releasing an atom that is not held does nothing.
 */
import type { Selector } from '../selector';
import type { ClassIndex } from './classes';
import type { AnyCidr } from '../primitives';
import type { LabelIndex } from './label-index';
import { cidrAtomId, npAtomId, selAtomId } from './rules';

/** The atoms a table context acquires (and releases when it dies). */
export interface AtomNeeds {
  sels: Selector[];
  cidrs: AnyCidr[];
  named: { sel: Selector; name: string }[];
}

export class Atoms {
  private readonly npAtoms = new Map<string, { sel: string; name: string; refs: number }>();
  private readonly cidrAtoms = new Map<string, { cidr: AnyCidr; refs: number }>();

  constructor(
    private readonly labels: LabelIndex,
    private readonly classes: ClassIndex,
  ) {}

  get selectorCount(): number {
    return this.labels.selectors.size;
  }

  get cidrCount(): number {
    return this.cidrAtoms.size;
  }

  get namedPortCount(): number {
    return this.npAtoms.size;
  }

  acquire(needs: AtomNeeds): void {
    for (const s of needs.sels) this.acquireSel(s);
    for (const c of needs.cidrs) this.acquireCidr(c);
    for (const n of needs.named) this.acquireNamed(n.sel, n.name);
  }

  release(needs: AtomNeeds): void {
    for (const s of needs.sels) this.releaseSel(s);
    for (const c of needs.cidrs) this.releaseCidr(c);
    for (const n of needs.named) this.releaseNamed(n.sel, n.name);
  }

  private acquireSel(sel: Selector): string {
    const id = selAtomId(sel);
    const a = this.labels.selectors.get(id);
    if (a !== undefined) {
      a.refs++;
      return id;
    }
    this.labels.addSelector(id, sel);
    return id;
  }

  private releaseSel(sel: Selector): void {
    const id = selAtomId(sel);
    const a = this.labels.selectors.get(id);
    if (a === undefined) return;
    if (--a.refs > 0) return;
    this.labels.removeSelector(a);
    this.classes.dropAtomHash(id);
  }

  private acquireNamed(sel: Selector, name: string): void {
    const sid = this.acquireSel(sel);
    const id = npAtomId(sid, name);
    const a = this.npAtoms.get(id);
    if (a !== undefined) {
      a.refs++;
      return;
    }
    this.npAtoms.set(id, { sel: sid, name, refs: 1 });
    this.labels.addNamedPort(sid, name, id);
  }

  private releaseNamed(sel: Selector, name: string): void {
    const sid = selAtomId(sel);
    const id = npAtomId(sid, name);
    const a = this.npAtoms.get(id);
    if (a !== undefined && --a.refs === 0) {
      this.npAtoms.delete(id);
      this.labels.removeNamedPort(sid, name);
    }
    this.releaseSel(sel);
  }

  private acquireCidr(c: AnyCidr): void {
    const id = cidrAtomId(c);
    const a = this.cidrAtoms.get(id);
    if (a !== undefined) {
      a.refs++;
      return;
    }
    this.cidrAtoms.set(id, { cidr: c, refs: 1 });
    this.classes.addCidrAtom(id, c);
  }

  private releaseCidr(c: AnyCidr): void {
    const id = cidrAtomId(c);
    const a = this.cidrAtoms.get(id);
    if (a === undefined || --a.refs > 0) return;
    this.cidrAtoms.delete(id);
    this.classes.dropAtomHash(id);
    this.classes.removeCidrAtom(id, c);
  }
}
