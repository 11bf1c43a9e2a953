import t from 'tap';
import { resolveConfig } from '../../src/node/config';
import { applyHeapGrowing } from '../../src/node/run';
import { CALICO_CT_TIMEOUTS } from '../../src/dataplane/bpf/conntrack';

t.test('Calico environment names are honoured, flags win over them', async (t) => {
  const env = {
    NODENAME: 'node2', IP: '10.0.2.10/24', IP_AUTODETECTION_METHOD: 'can-reach=198.18.0.1',
    DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://127.0.0.1:2379,https://127.0.0.2:2379',
    ETCD_CA_CERT_FILE: '/ca.pem', ETCD_CERT_FILE: '/c.pem', ETCD_KEY_FILE: '/k.pem', FELIX_LOGSEVERITYSCREEN: 'Warning',
  };
  const c = resolveConfig({}, env);
  t.equal(c.nodeName, 'node2');
  t.equal(c.ip, '10.0.2.10/24', 'address keeps its subnet');
  t.equal(c.ipAutodetectionMethod, 'can-reach=198.18.0.1');
  t.equal(c.datastoreType, 'etcdv3');
  t.same(c.etcd, { endpoints: ['http://127.0.0.1:2379', 'https://127.0.0.2:2379'], caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' });
  t.equal(c.logLevel, 'warn');
  const f = resolveConfig({ nodeName: 'node3', ip: '198.18.1.2', logLevel: 'debug', datastoreType: 'embedded' }, env);
  t.equal(f.nodeName, 'node3');
  t.equal(f.ip, '198.18.1.2', 'a bare address is kept (its prefix comes from the interface)');
  t.equal(f.logLevel, 'debug');
  t.equal(f.datastoreType, 'embedded');
});

t.test('defaults', async (t) => {
  const c = resolveConfig({ nodeName: 'n1' }, {});
  t.equal(c.ip, 'autodetect');
  t.equal(c.ipAutodetectionMethod, 'first-found');
  t.equal(c.datastoreType, 'embedded');
  t.equal(c.bpffsRoot, '/sys/fs/bpf/tortie');
  t.equal(c.interfacePrefix, 'cali');
  t.equal(resolveConfig({ nodeName: 'n1' }, { FELIX_INTERFACEPREFIX: 'cali, veth' }).interfacePrefix, 'cali,veth', "Calico's comma-separated list");
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { FELIX_INTERFACEPREFIX: 'cali,' }), /interface prefix "" \(of "cali,"\)/);
  t.equal(c.metricsPort, 9091);
  t.equal(c.healthPort, 9099);
  t.equal(c.policyOnly, false);
  t.equal(c.heapGrowingPercent, 20);
  t.same(c.nat, { portMin: 20000, portMax: 29999, quota: 8192, maxEntries: 131072 });
});

t.test('NAT and conntrack options: Calico\'s FELIX_NATPORTRANGE, quotas and table sizes; bad values named', async (t) => {
  const c = resolveConfig({ nodeName: 'n1', natQuota: '100' }, { FELIX_NATPORTRANGE: '40000:40999', TORTIE_NAT_MAX_ENTRIES: '4096' });
  t.same(c.nat, { portMin: 40000, portMax: 40999, quota: 100, maxEntries: 4096 });
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { FELIX_NATPORTRANGE: '30000:20000' }), /FELIX_NATPORTRANGE: "30000:20000" is not a port range/);
  t.throws(() => resolveConfig({ nodeName: 'n1', natQuota: '-1' }, {}), /--nat-quota: "-1" is not a non-negative integer/);
  t.throws(() => resolveConfig({ nodeName: 'n1', natMaxEntries: '1' }, {}), /--nat-max-entries: "1" is not an integer/);
  t.same(resolveConfig({ nodeName: 'n1' }, {}).ct, { maxEntries: undefined, quota: undefined, timeouts: CALICO_CT_TIMEOUTS }, 'conntrack: sizes from memory');
  t.same(resolveConfig({ nodeName: 'n1', ctQuota: '0' }, { TORTIE_CT_MAX_ENTRIES: '65536' }).ct, { maxEntries: 65536, quota: 0, timeouts: CALICO_CT_TIMEOUTS });
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { TORTIE_CT_QUOTA: 'lots' }), /TORTIE_CT_QUOTA: "lots" is not a non-negative integer/);
  t.throws(() => resolveConfig({ nodeName: 'n1', ctMaxEntries: '10' }, {}), /--ct-max-entries: "10" is not an integer in 1024/);
});

t.test('Felix logging and metrics names', async (t) => {
  const d = resolveConfig({ nodeName: 'n1' }, {});
  t.match(d, { metricsEnabled: true, metricsHost: '127.0.0.1', logFile: '', logLevelFile: 'info', logFormat: 'json', flowLogFile: '' }, 'defaults: metrics on, no log file, JSON screen, flows in the main log');
  const c = resolveConfig({ nodeName: 'n1' }, {
    FELIX_PROMETHEUSMETRICSENABLED: 'false', FELIX_PROMETHEUSMETRICSPORT: '9191', FELIX_PROMETHEUSMETRICSHOST: '0.0.0.0',
    FELIX_LOGFILEPATH: '/var/log/calico/felix.log', FELIX_LOGSEVERITYFILE: 'Debug', FELIX_LOGSEVERITYSCREEN: 'Error',
    TORTIE_LOGFORMAT: 'text', FELIX_FLOWLOGSFILEDIRECTORY: '/var/log/calico/flowlogs/',
  });
  t.match(c, { metricsEnabled: false, metricsPort: 9191, metricsHost: '0.0.0.0', logFile: '/var/log/calico/felix.log', logLevelFile: 'debug',
    logLevel: 'error', logFormat: 'text', flowLogFile: '/var/log/calico/flowlogs/flows.log' });
  t.equal(resolveConfig({ nodeName: 'n1' }, { FELIX_LOGFILEPATH: 'None' }).logFile, '', 'none = no log file');
  t.equal(resolveConfig({ nodeName: 'n1', metrics: false }, { FELIX_PROMETHEUSMETRICSENABLED: 'true' }).metricsEnabled, false, '--no-metrics wins');
  t.equal(resolveConfig({ nodeName: 'n1', flowLogFile: '-' }, { FELIX_FLOWLOGSFILEDIRECTORY: '/x' }).flowLogFile, '-', 'flag wins');
});

t.test('the CNI socket defaults into the run directory, from the flag or the environment', async (t) => {
  t.equal(resolveConfig({ nodeName: 'n1' }, {}).cniSocket, '/run/tortie/cni.sock');
  t.equal(resolveConfig({ nodeName: 'n1', runDir: '/tmp/r1' }, {}).cniSocket, '/tmp/r1/cni.sock', '--run-dir');
  t.equal(resolveConfig({ nodeName: 'n1' }, { TORTIE_RUN_DIR: '/tmp/r2' }).cniSocket, '/tmp/r2/cni.sock', 'TORTIE_RUN_DIR');
  t.equal(resolveConfig({ nodeName: 'n1', runDir: '/tmp/r1' }, {}).runDir, '/tmp/r1');
});

t.test('etcd endpoints without a type select etcdv3 (as tortiectl and the CNI plugin)', async (t) => {
  t.equal(resolveConfig({ nodeName: 'n1' }, { ETCD_ENDPOINTS: 'http://127.0.0.9:2379' }).datastoreType, 'etcdv3');
  t.equal(resolveConfig({ nodeName: 'n1', etcdEndpoints: 'http://127.0.0.9:2379' }, {}).datastoreType, 'etcdv3');
  t.equal(resolveConfig({ nodeName: 'n1' }, { ETCD_ENDPOINTS: 'http://127.0.0.9:2379', DATASTORE_TYPE: 'embedded' }).datastoreType, 'embedded');
});

t.test('heap growing percent: flag, environment, bounds', async (t) => {
  t.equal(resolveConfig({ nodeName: 'n1' }, { TORTIE_HEAP_GROWING_PERCENT: '0' }).heapGrowingPercent, 0, '0 = V8 default');
  t.equal(resolveConfig({ nodeName: 'n1', heapGrowingPercent: '50' }, { TORTIE_HEAP_GROWING_PERCENT: '10' }).heapGrowingPercent, 50, 'flag wins');
  // Not applied when node itself was given the flag; applied otherwise (the V8 flag is global to
  // this process, so only the decision is checked, with the value V8 already has).
  t.equal(applyHeapGrowing(20, ['--heap-growing-percent=30'], ''), false);
  t.equal(applyHeapGrowing(20, [], '--max-old-space-size=100 --heap_growing_percent=30'), false);
  t.equal(applyHeapGrowing(0, [], ''), false);
  t.equal(applyHeapGrowing(20, [], '--max-old-space-size=4096'), true, 'applied when node was not given it');
});

t.test('bad values name the flag or variable and the value', async (t) => {
  const bad: [Record<string, string>, Record<string, string>, RegExp][] = [
    [{}, { DATASTORE_TYPE: 'kubernetes' }, /DATASTORE_TYPE: datastore type "kubernetes" is not supported/],
    [{ ip: '10.0.2.300/24' }, {}, /--ip: "10.0.2.300\/24" is not/],
    [{}, { IP: '1.2.3.4/33' }, /IP: "1.2.3.4\/33"/],
    [{}, { ETCD_ENDPOINTS: 'not a url' }, /ETCD_ENDPOINTS: etcd endpoint "not a url" is not a URL/],
    [{}, { ETCD_ENDPOINTS: 'ftp://x:1' }, /must use http or https/],
    [{ metricsPort: '70000' }, {}, /--metrics-port: port "70000"/],
    [{}, { FELIX_HEALTHPORT: 'abc' }, /FELIX_HEALTHPORT: port "abc"/],
    [{ logLevel: 'loud' }, {}, /--log-level: log level "loud"/],
    [{ nodeName: 'Bad_Name' }, {}, /node name "Bad_Name"/],
    [{}, { FELIX_PROMETHEUSMETRICSENABLED: 'maybe' }, /FELIX_PROMETHEUSMETRICSENABLED: "maybe" is not a boolean/],
    [{ logFormat: 'xml' }, {}, /--log-format: log format "xml" is not "json" or "text"/],
    [{}, { FELIX_LOGSEVERITYFILE: 'chatty' }, /FELIX_LOGSEVERITYFILE: log level "chatty"/],
    [{}, { ETCD_CERT_FILE: '/c.pem' }, /must be given together/],
    [{ maxBatch: '0' }, {}, /--max-batch: "0" is not a positive integer/],
    [{ heapGrowingPercent: '-5' }, {}, /--heap-growing-percent: "-5" is not an integer in 0–400/],
    [{}, { TORTIE_HEAP_GROWING_PERCENT: '1000' }, /TORTIE_HEAP_GROWING_PERCENT: "1000" is not an integer in 0–400/],
  ];
  for (const [opts, env, re] of bad) {
    t.throws(() => resolveConfig({ nodeName: 'n1', ...opts }, env), { name: 'ConfigError', code: 'ERR_CONFIG_INVALID', message: re }, re.source);
  }
});

t.test('BPF host routing: auto by default, off from the flag or TORTIE_BPF_HOST_ROUTING, anything else refused', async (t) => {
  t.equal(resolveConfig({ nodeName: 'n1' }, {}).hostRouting, 'auto');
  t.equal(resolveConfig({ nodeName: 'n1' }, { TORTIE_BPF_HOST_ROUTING: 'Off' }).hostRouting, 'off');
  t.equal(resolveConfig({ nodeName: 'n1' }, { TORTIE_BPF_HOST_ROUTING: 'Auto' }).hostRouting, 'auto');
  t.equal(resolveConfig({ nodeName: 'n1', bpfHostRouting: 'off' }, { TORTIE_BPF_HOST_ROUTING: 'auto' }).hostRouting, 'off', 'the flag wins');
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { TORTIE_BPF_HOST_ROUTING: 'on' }), /TORTIE_BPF_HOST_ROUTING: "on" is not one of auto, off/);
  t.throws(() => resolveConfig({ nodeName: 'n1', bpfHostRouting: 'yes' }, {}), /--bpf-host-routing: "yes" is not one of auto, off/);
});

t.test('policy map sizes: --bpf-map-sizes / TORTIE_BPF_MAP_SIZES, checked', async (t) => {
  t.same(resolveConfig({ nodeName: 'n1' }, {}).mapSizes, {}, 'none: the loader defaults');
  t.same(resolveConfig({ nodeName: 'n1' }, { TORTIE_BPF_MAP_SIZES: 'proj=8388608, pol=4194304,rt4=524288' }).mapSizes, { proj: 8388608, pol: 4194304, rt4: 524288 });
  t.same(resolveConfig({ nodeName: 'n1', bpfMapSizes: 'cls4=524288' }, { TORTIE_BPF_MAP_SIZES: 'proj=8388608' }).mapSizes, { cls4: 524288 }, 'the flag wins');
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { TORTIE_BPF_MAP_SIZES: 'ct4=100000' }), /TORTIE_BPF_MAP_SIZES: "ct4" is not a map sized by this setting \(maps: cls4, tbl, proj, spc, pol, rt4\)/);
  t.throws(() => resolveConfig({ nodeName: 'n1', bpfMapSizes: 'proj' }), /--bpf-map-sizes: "proj" is not map=entries/);
  t.throws(() => resolveConfig({ nodeName: 'n1', bpfMapSizes: 'proj=10' }), /proj=10 is not an integer in 65536–67108864/);
  t.throws(() => resolveConfig({ nodeName: 'n1', bpfMapSizes: 'pol=99999999999' }), /pol=99999999999 is not an integer/);
  t.throws(() => resolveConfig({ nodeName: 'n1', bpfMapSizes: 'pol=65536,pol=131072' }), /pol given twice/);
});
