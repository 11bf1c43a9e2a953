// BpfError formatting (pure logic; no kernel): errno names including kernel-only ones, the
// verifier summary taken from a captured libbpf log, the recoverable marker.
import t from 'tap';
import { BpfError, errnoName, isBpfError, verifierSummary } from '../../src/dataplane/native';

t.test('errno names', async (t) => {
  t.equal(errnoName(2), 'ENOENT');
  t.equal(errnoName(9), 'EBADF');
  t.equal(errnoName(22), 'EINVAL');
  t.equal(errnoName(7), 'E2BIG');
  t.equal(errnoName(524), 'ENOTSUPP', 'kernel-internal errno the bpf syscall leaks');
  t.equal(errnoName(0), '');
  t.equal(errnoName(99999), 'errno 99999');
});

t.test('message, fields and markers', async (t) => {
  const e = new BpfError('ERR_BPF_MAP_LOOKUP', 'bpf_map_lookup_elem', 2, 'no such key in map m (fd 5)');
  t.equal(e.name, 'BpfError');
  t.equal(e.message, 'no such key in map m (fd 5): bpf_map_lookup_elem failed (ENOENT, no such file or directory)');
  t.equal(e.errnoName, 'ENOENT');
  t.equal(e.log, '');
  t.equal(e.verifierSummary, undefined);
  t.equal(e.recoverable, false);
  t.equal(new BpfError('X', 'op', 11, 'd').recoverable, true, 'EAGAIN is recoverable');
  t.equal(new BpfError('X', 'op', 0, 'bad thing').message, 'bad thing: op failed', 'no errno');
  t.ok(isBpfError(e));
  t.ok(isBpfError(e, 'ENOENT'));
  t.notOk(isBpfError(e, 'EINVAL'));
  t.notOk(isBpfError(new Error('x')));
});

t.test('verifier summary: the last verdict line of the last program log', async (t) => {
  const log = [
    "libbpf: prog 'a': BPF program load failed: Permission denied",
    "libbpf: prog 'a': -- BEGIN PROG LOAD LOG --",
    '0: R1=ctx() R10=fp0',
    '1: (71) r2 = *(u8 *)(r1 +0)',
    'invalid access to packet, off=0 size=1, R1(id=0,off=0,r=0)',
    'R1 offset is outside of the packet',
    'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
    '-- END PROG LOAD LOG --',
    "libbpf: prog 'a': failed to load: -13",
    '',
  ].join('\n');
  t.equal(verifierSummary(log), 'program a: R1 offset is outside of the packet');
  t.equal(verifierSummary('libbpf: failed to open'), undefined, 'no program log');
  const e = new BpfError('ERR_BPF_OBJECT_LOAD', 'bpf_object__load', 13, 'load of BPF object x.o failed', log);
  t.equal(e.verifierSummary, 'program a: R1 offset is outside of the packet');
  t.match(e.message, /; verifier: program a: R1 offset is outside of the packet$/);
});
