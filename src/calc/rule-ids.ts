/**
 * RuleIds — calc graph node: the rule registry shared by tables and the prefilter.
 *
 *   TableContexts (rules of their steps) ──ref / unref──┐
 *   PrefilterCalc (rules of its deny entries) ──────────┴──> rule key → { info, id, refs }
 *                                                              │ emit(): dirty keys only
 *                                                              ▼
 *                                         delta.rulesUpserted / rulesRemoved (by id)
 *
 * A rule key names a rule of a resource version in a direction (rules.ts); its id is a 32-bit
 * hash of the key (probing past ids of other live keys), so equal rules keep their id across
 * flushes and graphs.
 *
 * Contract: every ref has one matching unref; a rule exists from its first ref to its last unref.
 * The info of a rule is the one given by its last ref (infos are never mutated). emit() reports
 * each rule whose id or info differs from what was last emitted, and each rule emitted before
 * that no longer exists.
 */
import { hashId } from './graph-util';
import type { CalcDelta, RuleInfo } from './types';

export class RuleIds {
  private readonly rules = new Map<string, { info: Omit<RuleInfo, 'id'>; id: number; refs: number }>();
  private readonly ruleIds = new Map<number, string>();
  private readonly dirtyRules = new Set<string>();
  /** Rule key → the id and info last emitted (info objects are internal and never mutated). */
  private readonly emitted = new Map<string, { id: number; info: Omit<RuleInfo, 'id'> }>();

  ref(key: string, info: Omit<RuleInfo, 'id'>): void {
    this.dirtyRules.add(key);
    const r = this.rules.get(key);
    if (r !== undefined) {
      r.refs++;
      r.info = info;
      return;
    }
    const id = hashId(key, (i) => this.ruleIds.has(i));
    this.rules.set(key, { info, id, refs: 1 });
    this.ruleIds.set(id, key);
  }

  unref(key: string): void {
    this.dirtyRules.add(key);
    const r = this.rules.get(key);
    if (r === undefined || --r.refs > 0) return;
    this.rules.delete(key);
    this.ruleIds.delete(r.id);
  }

  /** The id of a live rule; 0 for a key with no rule. */
  id(key: string): number {
    return this.rules.get(key)?.id ?? 0;
  }

  emit(delta: CalcDelta): void {
    for (const key of this.dirtyRules) {
      const prev = this.emitted.get(key);
      if (prev === undefined) continue;
      const r = this.rules.get(key);
      if (r === undefined) {
        this.emitted.delete(key);
        delta.rulesRemoved.push(prev.id);
      }
    }
    for (const key of this.dirtyRules) {
      const r = this.rules.get(key);
      if (r === undefined) continue;
      const prev = this.emitted.get(key);
      if (prev !== undefined && prev.id === r.id && (prev.info === r.info || JSON.stringify(prev.info) === JSON.stringify(r.info))) continue;
      this.emitted.set(key, { id: r.id, info: r.info });
      delta.rulesUpserted.push({ id: r.id, ...r.info });
    }
    this.dirtyRules.clear();
    delta.rulesRemoved.sort((a, b) => a - b);
    delta.rulesUpserted.sort((a, b) => a.id - b.id);
  }

  /** Every live rule, by id. */
  snapshot(): RuleInfo[] {
    return [...this.rules.values()].map((r) => ({ id: r.id, ...r.info })).sort((a, b) => a.id - b.id);
  }
}
