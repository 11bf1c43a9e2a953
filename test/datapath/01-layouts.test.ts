// The TS side of every map (codecs) and the drop-reason mirror agree with the C the BPF
// compiler saw: layouts and enumerators are read from the BTF of the compiled objects.
import t from 'tap';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { checkStructLayout } from '../../src/dataplane/native';
import { ALL_CODECS } from '../../src/dataplane/bpf/codecs';
import { DropReason, cEnumeratorName, type DropReasonName } from '../../src/dataplane/bpf/drop-reasons';
import { defaultObjectDir } from '../../src/dataplane/bpf/loader';

const WEP = path.join(defaultObjectDir(), 'tortie_wep.bpf.o');
const XDP = path.join(defaultObjectDir(), 'tortie_xdp.bpf.o');

t.test('every map codec matches its struct in BTF', async (t) => {
  for (const c of ALL_CODECS) {
    t.same(checkStructLayout(WEP, c.name, c.layout), [], `${c.name} (tortie_wep)`);
  }
  for (const name of ['tortie_pf4_key', 'tortie_pf_value', 'tortie_cnt_key', 'tortie_cnt_value']) {
    const c = ALL_CODECS.find((x) => x.name === name)!;
    t.same(checkStructLayout(XDP, name, c.layout), [], `${name} (tortie_xdp)`);
  }
});

function btfEnum(obj: string, name: string): Map<string, number> {
  // Enumerator values can exceed 2^53 as printed (negative values are shown as unsigned 64-bit),
  // so read them as strings and convert exactly.
  const text = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', obj], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .replace(/"val":(-?\d+)/g, '"val":"$1"');
  const out = JSON.parse(text) as { types: { kind: string; name: string; values?: { name: string; val: string }[] }[] };
  const e = out.types.find((x) => x.kind === 'ENUM' && x.name === name);
  if (!e) throw new Error(`enum ${name} not in the BTF of ${obj}`);
  return new Map((e.values ?? []).map((v) => [v.name, Number(BigInt.asIntN(32, BigInt(v.val)))]));
}

t.test('drop reasons: TS mirror equals the C enum', async (t) => {
  const c = btfEnum(WEP, 'tortie_drop_reason');
  const names = Object.keys(DropReason) as DropReasonName[];
  for (const n of names) t.equal(c.get(cEnumeratorName(n)), DropReason[n], cEnumeratorName(n));
  const cNames = [...c.keys()].filter((k) => k !== 'TORTIE_DROP_MIN');
  t.equal(cNames.length, names.length, 'no C enumerator without a TS name');
  t.equal(c.get('TORTIE_DROP_MIN'), Math.min(...Object.values(DropReason)), 'TORTIE_DROP_MIN is the most negative reason');
  t.equal(new Set(Object.values(DropReason)).size, names.length, 'codes are unique');
});

t.test('direction codes match enum tortie_dir', async (t) => {
  const d = btfEnum(WEP, 'tortie_dir');
  t.same(Object.fromEntries(d), { TORTIE_DIR_INGRESS: 0, TORTIE_DIR_EGRESS: 1, TORTIE_DIR_UPLINK: 2 });
});

t.test('map names: tortie_<x>_v<n>, at most 15 characters (the kernel keeps 15)', async (t) => {
  const { MAP } = await import('../../src/dataplane/bpf/codecs');
  const { BpfObject } = await import('../../src/dataplane/native');
  const inObjects = new Set<string>();
  for (const f of ['tortie_wep.bpf.o', 'tortie_xdp.bpf.o', 'tortie_hep.bpf.o']) {
    const o = BpfObject.open(path.join(defaultObjectDir(), f));
    for (const m of o.maps()) inObjects.add(m.name);
    o.close();
  }
  for (const name of Object.values(MAP)) {
    t.match(name, /^tortie_[a-z0-9]+_v[0-9]+$/, name);
    t.ok(name.length <= 15, `${name} is ${name.length} characters`);
    t.ok(inObjects.has(name), `${name} is defined by the programs`);
  }
});
