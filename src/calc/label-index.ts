/**
 * LabelIndex — calc graph node: items and selector memberships.
 *
 *   WorkloadEndpoint, GlobalNetworkSet, NetworkSet ─┐ markItem
 *   Profile, Namespace (labels inherited) ──────────┴ markProfile / markNamespace
 *                                                   │
 *                                          recompute(): dirty items, by key
 *                                                   │
 *   item labels ─> label group ─> (k, v) → groups; k → values  Atoms.acquire/release(selector)
 *                                   ╲                        ╱  addSelector / removeSelector
 *                         selector atoms by their most selective restriction ((k, v) sets, a key, none)
 *                                   │
 *                      memberships: item.sels ⇄ atom.members (and named ports: atom.np)
 *                                   │
 *       ClassIndex.markItemNodes / setItemPrefixes      EndpointPolicies.markLocal / markRelabelled
 *       (the item's prefixes are re-signed)             (a local endpoint may have changed)
 *
 * Items: every WorkloadEndpoint (key `namespace/name`), network set (keys
 * `GlobalNetworkSet:<name>`, `NetworkSet:<namespace>/<name>`: labels and CIDRs, never local, no
 * ports) and HostEndpoint (`HostEndpoint:<name>`: labels, expectedIPs, named ports; local when on
 * this node) — rule selectors match them alike, through the prefix nodes of their addresses.
 *
 * Contract: marks may arrive in any order, for items that do not exist (yet or any more): an item
 * is built from the current resources only when recomputed, and a missing profile or namespace
 * contributes no labels. After recompute(), for every item and every selector atom,
 * `atom.members.has(item) === item.sels.has(atom) === atom.sel.evaluate(item.labels)`. Every index
 * add has one matching remove: an item leaves its label group, and its profile and namespace
 * entries are removed, when its labels change or it goes (a group's (k, v) entries go with its
 * last item); a selector's index entries when its last reference goes.
 */
import type { Resource, WorkloadEndpoint } from '../model';
import { NAMESPACE_PROFILE_PREFIX } from '../model/derived';
import type { Selector } from '../selector';
import { anyKey, type ClassIndex } from './classes';
import type { EndpointPolicies } from './endpoint-policies';
import { addTo, kv, removeFrom } from './graph-util';
import { isCidr6, tryParseCidrOrIp4, tryParseCidrOrIp6, type AnyCidr } from '../primitives';
import { effectiveLabels, networkSetLabels, protocolNumber } from './semantics';
import type { ResourceState } from './store';

/** Item-key prefixes of network sets (workload endpoint keys are `namespace/name`). */
export const GNS_ITEM = 'GlobalNetworkSet:';
/** Item-key prefix of host endpoints (local ones are local endpoints under the same key). */
export const HEP_ITEM = 'HostEndpoint:';
export const NS_ITEM = 'NetworkSet:';

export interface Item {
  key: string;
  labels: Record<string, string>;
  /** IPv4 prefixes first, then IPv6 ones (the compiler's address partition holds both). */
  prefixes: AnyCidr[];
  ports: { name: string; protocol: number; port: number }[];
  /**
   * Selector atoms this item is a member of: its label group's set (memberships are a function of
   * the labels), shared by the group's items; changed only here.
   */
  sels: Set<string>;
  profiles: string[];
  namespace: string;
  local: boolean;
  /** The items with the same labels (`labels` is the group's object); undefined until first labelled. */
  group?: LabelGroup;
  /** ClassIndex's round of marks in which this item's nodes were last marked (0: none). */
  markGen: number;
}

/**
 * Items with equal labels (same keys in the same order, same values): one label map and one
 * entry per (k, v) in the label index for all of them (at 100,000 endpoints ~2,300 groups).
 * Selector memberships are a function of the labels, so a selector is evaluated once per group.
 */
export interface LabelGroup {
  key: string;
  labels: Record<string, string>;
  items: Set<string>;
  /** The selector atoms matching `labels` (every item's `sels`). */
  sels: Set<string>;
}

/** The `sels` of an item in no group (no labels yet, or gone): never added to. */
const NO_SELS: ReadonlySet<string> = new Set<string>();

export interface SelAtom {
  id: string;
  sel: Selector;
  /** References held through Atoms (table contexts); the atom is removed at 0. */
  refs: number;
  members: Set<string>;
  /** Named-port atoms over this selector: port name → atom id. */
  np: Map<string, string>;
  index: { kind: 'kv'; keys: string[] } | { kind: 'k'; key: string } | { kind: 'none' };
}

/** Equal port lists (what JSON.stringify of both compared: same fields, same order). */
function samePorts(a: Item['ports'], b: Item['ports']): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || x.protocol !== y.protocol || x.port !== y.port) return false;
  }
  return true;
}

function samePrefixes(a: readonly AnyCidr[], b: readonly AnyCidr[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (anyKey(a[i]!) !== anyKey(b[i]!)) return false;
  return true;
}

/** What an item is made of (LabelIndex.itemSource); `labelsKey`: labelsKey(labels) when known. */
type ItemSource = Omit<Item, 'key' | 'sels' | 'markGen'> & { labelsKey?: string };

const NO_OWN_LABELS = {};
/** LabelIndex.wepLabels's entries: by own label map, then a list of (profiles, the rest). */
interface LabelsMemo {
  profiles: object;
  rest: string;
  labels: Record<string, string>;
  key: string;
  next: LabelsMemo | undefined;
}
const NO_PROFILES: string[] = [];

/** A label group's key: its labels in order (for-in, not Object.entries: no [k, v] arrays). */
function labelsKey(labels: Record<string, string>): string {
  let key = '';
  for (const k in labels) key += `${k}\u0000${labels[k]}\u0000`;
  return key;
}

/** IPv4 and IPv6 prefixes of a list of addresses/CIDRs, deduplicated, IPv4 first; others skipped. */
function prefixesOf(list: readonly string[]): AnyCidr[] {
  if (list.length === 1) {
    // The usual endpoint: one address (no dedupe set).
    const c: AnyCidr | undefined = tryParseCidrOrIp4(list[0]!) ?? tryParseCidrOrIp6(list[0]!);
    return c === undefined ? [] : [c];
  }
  const v4: AnyCidr[] = [];
  const v6: AnyCidr[] = [];
  const seen = new Set<string>();
  for (const n of list) {
    const c: AnyCidr | undefined = tryParseCidrOrIp4(n) ?? tryParseCidrOrIp6(n);
    if (c === undefined) continue;
    const k = anyKey(c);
    if (seen.has(k)) continue;
    seen.add(k);
    (isCidr6(c) ? v6 : v4).push(c);
  }
  return [...v4, ...v6];
}

export class LabelIndex {
  readonly items = new Map<string, Item>();
  /**
   * Label key → value → the label groups with that label (their items are the items with it).
   * Items with a key are the union of its values' groups (no per-key set: every item has the
   * namespace/orchestrator keys). Nested rather than keyed by kv(k, v): keys and values are the
   * store's shared strings (hashed once), and a first build enters every group's labels
   * (100,000 groups × ~10 labels in compile-bench, where nearly every endpoint's labels differ).
   */
  private readonly groupsByKV = new Map<string, Map<string, Set<LabelGroup>>>();
  private readonly itemsByProfile = new Map<string, Set<string>>();
  private readonly itemsByNamespace = new Map<string, Set<string>>();
  private readonly dirtyItems = new Set<string>();
  /** Label groups by their key (labelsKey); a group goes with its last item. */
  private readonly groups = new Map<string, LabelGroup>();

  readonly selectors = new Map<string, SelAtom>();
  private readonly selByKV = new Map<string, Set<string>>();
  private readonly selByK = new Map<string, Set<string>>();
  private readonly selUnindexed = new Set<string>();

  /** Wired by the graph (the nodes reference each other directly). */
  classes!: ClassIndex;
  endpoints!: EndpointPolicies;

  constructor(
    private readonly resources: ResourceState,
    private readonly nodeName: string,
  ) {}

  // ---------------------------------------------------------------- input marks

  markItem(key: string): void {
    this.dirtyItems.add(key);
  }

  /** Items referencing the profile (even before it existed) re-read labels and, if local, rules. */
  markProfile(name: string): void {
    for (const k of this.itemsByProfile.get(name) ?? []) this.dirtyItems.add(k);
  }

  /** Items in the namespace, and items naming the kns.<ns> profile derived from it (from any namespace). */
  markNamespace(name: string): void {
    for (const k of this.itemsByNamespace.get(name) ?? []) this.dirtyItems.add(k);
    this.markProfile(NAMESPACE_PROFILE_PREFIX + name);
  }

  /** The item key a WorkloadEndpoint / network set resource has here (undefined: not an item). */
  static itemKey(kind: Resource['kind'], key: string): string | undefined {
    if (kind === 'WorkloadEndpoint') return key;
    if (kind === 'GlobalNetworkSet') return GNS_ITEM + key;
    if (kind === 'NetworkSet') return NS_ITEM + key;
    if (kind === 'HostEndpoint') return HEP_ITEM + key;
    return undefined;
  }

  // ---------------------------------------------------------------- flush

  /** Flush step 1: dirty items (by key) re-read their source and memberships. */
  recompute(): void {
    for (const key of [...this.dirtyItems].sort()) this.recomputeItem(key);
    this.dirtyItems.clear();
    this.labelsMemo.clear();
  }

  /**
   * A workload endpoint's effective labels and their group key (setItemLabels), shared by the
   * endpoints of one recompute() made of the same parts: own label map (the store shares equal
   * ones), profiles list (likewise), namespace, orchestrator and service account — what
   * effectiveLabels reads besides the profiles' and the namespace's labels, which do not change
   * within a flush. At 100,000 endpoints in ~2,300 label groups most endpoints skip building
   * their labels and key. Cleared at the end of recompute().
   */
  private readonly labelsMemo = new Map<object, LabelsMemo>();

  private wepLabels(wep: WorkloadEndpoint): LabelsMemo {
    const own: object = wep.metadata.labels ?? NO_OWN_LABELS;
    const profiles: object = wep.spec.profiles ?? NO_PROFILES;
    const o = wep.spec.orchestrator;
    const rest = `${wep.metadata.namespace ?? 'default'}\u0000${o === undefined ? '\u0001' : o}\u0000${wep.spec.serviceAccountName ?? ''}`;
    const head = this.labelsMemo.get(own);
    for (let e = head; e !== undefined; e = e.next) if (e.profiles === profiles && e.rest === rest) return e;
    const labels = effectiveLabels(
      wep,
      (n) => this.resources.profile(n),
      (n) => this.resources.namespaces.get(n),
    );
    const e: LabelsMemo = { profiles, rest, labels, key: labelsKey(labels), next: head };
    this.labelsMemo.set(own, e);
    return e;
  }

  /** What an item is made of (see the file comment), from the current resources. */
  private itemSource(key: string): ItemSource | undefined {
    if (key.startsWith(GNS_ITEM) || key.startsWith(NS_ITEM)) {
      const set = key.startsWith(GNS_ITEM)
        ? this.resources.globalNetworkSets.get(key.slice(GNS_ITEM.length))
        : this.resources.networkSets.get(key.slice(NS_ITEM.length));
      if (set === undefined) return undefined;
      const labels = networkSetLabels(set, (n) => this.resources.profile(n), (n) => this.resources.namespaces.get(n));
      const prefixes = prefixesOf(set.spec.nets ?? []);
      const ns = set.kind === 'NetworkSet' ? (set.metadata.namespace ?? 'default') : '';
      return { labels, prefixes, ports: [], profiles: ns === '' ? [] : [NAMESPACE_PROFILE_PREFIX + ns], namespace: ns, local: false };
    }
    if (key.startsWith(HEP_ITEM)) return this.hostItemSource(key.slice(HEP_ITEM.length));
    const wep = this.resources.endpoints.get(key);
    if (wep === undefined) return undefined;
    const { labels, key: labelsKey } = this.wepLabels(wep);
    const prefixes = prefixesOf(wep.spec.ipNetworks ?? []);
    const ports: Item['ports'] = [];
    for (const p of wep.spec.ports ?? []) {
      const proto = protocolNumber(p.protocol);
      if (proto !== undefined) ports.push({ name: p.name, protocol: proto, port: p.port });
    }
    return {
      labels,
      labelsKey,
      prefixes,
      ports,
      profiles: wep.spec.profiles ?? [],
      namespace: wep.metadata.namespace ?? 'default',
      local: wep.spec.node === this.nodeName,
    };
  }

  /**
   * A HostEndpoint as an item: its labels (after its profiles' labelsToApply, as a workload's;
   * no namespace), its expectedIPs as its addresses (what rule selectors matching it match),
   * its named ports. Local when spec.node is this node.
   */
  private hostItemSource(name: string): Omit<Item, 'key' | 'sels' | 'markGen'> | undefined {
    const hep = this.resources.hostEndpoints.get(name);
    if (hep === undefined) return undefined;
    const labels = Object.setPrototypeOf({}, null) as Record<string, string>;
    const profiles = hep.spec.profiles ?? [];
    for (let i = profiles.length - 1; i >= 0; i--) {
      const lta = this.resources.profile(profiles[i]!)?.spec.labelsToApply;
      if (lta !== undefined) for (const [k, v] of Object.entries(lta)) labels[k] = v;
    }
    for (const [k, v] of Object.entries(hep.metadata.labels ?? {})) labels[k] = v;
    const prefixes: AnyCidr[] = [];
    for (const ip of hep.spec.expectedIPs ?? []) {
      const c: AnyCidr | undefined = tryParseCidrOrIp4(ip) ?? tryParseCidrOrIp6(ip);
      if (c !== undefined && !prefixes.some((p) => anyKey(p) === anyKey(c))) prefixes.push(c);
    }
    const ports: Item['ports'] = [];
    for (const p of hep.spec.ports ?? []) {
      const proto = protocolNumber(p.protocol);
      if (proto !== undefined) ports.push({ name: p.name, protocol: proto, port: p.port });
    }
    return { labels, prefixes, ports, profiles, namespace: '', local: hep.spec.node === this.nodeName };
  }

  private recomputeItem(key: string): void {
    const src = this.itemSource(key);
    const old = this.items.get(key);
    if (src === undefined) {
      if (old === undefined) return;
      const oldSels = old.sels;
      this.leaveGroup(old);
      for (const s of oldSels) this.selectors.get(s)?.members.delete(key);
      this.classes.setItemPrefixes(old, []);
      for (const p of old.profiles) removeFrom(this.itemsByProfile, p, key);
      removeFrom(this.itemsByNamespace, old.namespace, key);
      this.items.delete(key);
      if (old.local) this.endpoints.markLocal(key);
      return;
    }
    const { prefixes, ports, local, profiles, namespace } = src;
    let item = old;
    if (item === undefined) {
      item = { key, labels: {}, prefixes: [], ports: [], sels: NO_SELS as Set<string>, profiles: [], namespace, local, group: undefined, markGen: 0 };
      this.items.set(key, item);
      addTo(this.itemsByNamespace, namespace, key);
    }
    for (const p of item.profiles) removeFrom(this.itemsByProfile, p, key);
    for (const p of profiles) addTo(this.itemsByProfile, p, key);
    item.profiles = profiles;
    if (item.namespace !== namespace) {
      removeFrom(this.itemsByNamespace, item.namespace, key);
      addTo(this.itemsByNamespace, namespace, key);
      item.namespace = namespace;
    }
    if (item.local || local) this.endpoints.markRelabelled(key);
    item.local = local;
    let changed = !samePorts(item.ports, ports);
    // Exact-length copies: arrays grown by push keep spare capacity (×10,000 items).
    item.ports = ports.slice();
    // Memberships: the new label group's (computed when the group was made), against the old.
    const oldSels = item.sels;
    this.setItemLabels(item, src.labels, src.labelsKey);
    const now = item.sels;
    if (now !== oldSels) {
      for (const s of oldSels) {
        if (now.has(s)) continue;
        changed = true;
        this.selectors.get(s)?.members.delete(key);
      }
      for (const s of now) {
        if (oldSels.has(s)) continue;
        changed = true;
        this.selectors.get(s)!.members.add(key);
      }
    }
    const prefChanged = !samePrefixes(item.prefixes, prefixes);
    if (changed && !prefChanged) this.classes.markItemNodes(item);
    if (prefChanged) this.classes.setItemPrefixes(item, prefixes);
  }

  /** Moves the item into the group of `labels` (made if new; the old one goes if emptied). */
  private setItemLabels(item: Item, labels: Record<string, string>, known?: string): void {
    const key = known ?? labelsKey(labels);
    if (item.group?.key === key) return;
    this.leaveGroup(item);
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { key, labels, items: new Set(), sels: this.matchingSelectors(labels) };
      this.groups.set(key, g);
      for (const k in labels) {
        const v = labels[k]!;
        let byV = this.groupsByKV.get(k);
        if (byV === undefined) this.groupsByKV.set(k, (byV = new Map()));
        addTo(byV, v, g);
      }
    }
    g.items.add(item.key);
    item.group = g;
    item.labels = g.labels;
    item.sels = g.sels;
  }

  /** The selector atoms `labels` match: candidates from the selector index, evaluated. */
  private matchingSelectors(labels: Record<string, string>): Set<string> {
    // A first build labels every item before any selector atom exists.
    if (this.selectors.size === 0) return new Set<string>();
    const cands = new Set<string>(this.selUnindexed);
    for (const [k, v] of Object.entries(labels)) {
      for (const s of this.selByKV.get(kv(k, v)) ?? []) cands.add(s);
      for (const s of this.selByK.get(k) ?? []) cands.add(s);
    }
    const out = new Set<string>();
    for (const s of cands) if (this.selectors.get(s)!.sel.evaluate(labels)) out.add(s);
    return out;
  }

  private leaveGroup(item: Item): void {
    const g = item.group;
    if (g === undefined) return;
    item.group = undefined;
    item.labels = {};
    item.sels = NO_SELS as Set<string>;
    g.items.delete(item.key);
    if (g.items.size > 0) return;
    this.groups.delete(g.key);
    for (const [k, v] of Object.entries(g.labels)) {
      const byV = this.groupsByKV.get(k);
      if (byV === undefined) continue;
      removeFrom(byV, v, g);
      if (byV.size === 0) this.groupsByKV.delete(k);
    }
  }

  // ---------------------------------------------------------------- selector atoms (from Atoms)

  /** A new selector atom (one reference): indexed, and its members found from the label index. */
  addSelector(id: string, sel: Selector): void {
    const atom: SelAtom = { id, sel, refs: 1, members: new Set(), np: new Map(), index: { kind: 'none' } };
    // Index by the most selective restriction: a value set, else a required key.
    let best: SelAtom['index'] = { kind: 'none' };
    let bestSize = Infinity;
    let bestK = '';
    let bestVals: readonly string[] = [];
    for (const [k, r] of sel.labelRestrictions()) {
      if (r.mustHaveOneOfValues !== undefined && r.mustHaveOneOfValues.length < bestSize && r.mustHaveOneOfValues.length > 0) {
        best = { kind: 'kv', keys: r.mustHaveOneOfValues.map((v) => kv(k, v)) };
        bestSize = r.mustHaveOneOfValues.length;
        bestK = k;
        bestVals = r.mustHaveOneOfValues;
      } else if (r.mustBePresent && best.kind === 'none') {
        best = { kind: 'k', key: k };
      }
    }
    atom.index = best;
    // Candidate groups (a group has one value per key: the value sets' groups are disjoint).
    let cands: Iterable<LabelGroup>;
    if (best.kind === 'kv') {
      for (const k of best.keys) addTo(this.selByKV, k, id);
      const c: LabelGroup[] = [];
      const byV = this.groupsByKV.get(bestK);
      if (byV !== undefined) for (const v of bestVals) for (const g of byV.get(v) ?? []) c.push(g);
      cands = c;
    } else if (best.kind === 'k') {
      addTo(this.selByK, best.key, id);
      const c: LabelGroup[] = [];
      for (const groups of this.groupsByKV.get(best.key)?.values() ?? []) for (const g of groups) c.push(g);
      cands = c;
    } else {
      this.selUnindexed.add(id);
      cands = [...this.groups.values()];
    }
    this.selectors.set(id, atom);
    for (const g of cands) {
      if (!sel.evaluate(g.labels)) continue;
      g.sels.add(id);
      for (const ik of g.items) {
        atom.members.add(ik);
        this.classes.markItemNodes(this.items.get(ik)!);
      }
    }
  }

  /** Undoes addSelector (the atom's last reference went). */
  removeSelector(a: SelAtom): void {
    const id = a.id;
    for (const ik of a.members) {
      const it = this.items.get(ik);
      if (it === undefined) continue;
      it.sels.delete(id); // the group's set: once per group is enough, again is harmless
      this.classes.markItemNodes(it);
    }
    if (a.index.kind === 'kv') for (const k of a.index.keys) removeFrom(this.selByKV, k, id);
    else if (a.index.kind === 'k') removeFrom(this.selByK, a.index.key, id);
    else this.selUnindexed.delete(id);
    this.selectors.delete(id);
  }

  /** A named-port atom over a selector appeared: members with that port are re-signed. */
  addNamedPort(selId: string, name: string, npId: string): void {
    const atom = this.selectors.get(selId)!;
    atom.np.set(name, npId);
    this.markMembersWithPort(atom, name);
  }

  /** Undoes addNamedPort. */
  removeNamedPort(selId: string, name: string): void {
    const atom = this.selectors.get(selId);
    if (atom === undefined) return;
    atom.np.delete(name);
    this.markMembersWithPort(atom, name);
  }

  private markMembersWithPort(atom: SelAtom, name: string): void {
    for (const ik of atom.members) {
      const it = this.items.get(ik)!;
      if (it.ports.some((p) => p.name === name)) this.classes.markItemNodes(it);
    }
  }
}
