#!/usr/bin/env python3
"""normalize.py KIND BASE_PORT < dvecctl-json > normalised-json

Checks that dvecctl's --json output is JSON printed pretty with sorted keys (the text must
equal Python's json.dumps(indent=2, sort_keys=True) of it), checks the volatile fields for
sanity, then replaces them so the result can be compared with a golden file: ports become
offsets from BASE_PORT, terms, indexes, epochs, heartbeats and timings become placeholders.
Exits 1 with a message on stderr when a check fails.
"""
import json
import re
import sys

kind, base = sys.argv[1], int(sys.argv[2])
text = sys.stdin.read()
try:
    doc = json.loads(text)
except ValueError as e:
    sys.exit('not JSON: %s' % e)
want = json.dumps(doc, indent=2, sort_keys=True) + '\n'
if text != want:
    sys.exit('not pretty-printed with sorted keys:\n' + text)


def port(s):
    return re.sub(r'127\.0\.0\.1:(\d+)', lambda m: '127.0.0.1:BASE+%d' % (int(m.group(1)) - base), s)


def check(cond, what):
    if not cond:
        sys.exit('check failed: %s' % what)


if kind == 'status':
    coords = doc['coordinators']
    check(sum(1 for c in coords if c['leader']) == 1, 'exactly one coordinator is the leader')
    ids = {c['id'] for c in coords}
    me = doc['coordinator']
    check(me['leader_id'] in ids, 'leader_id is a coordinator')
    check(me['state'] in ('leader', 'follower'), 'coordinator state')
    check(me['term'] >= 1 and me['commit_index'] >= me['last_applied'] >= 1, 'raft indexes')
    check(me['leader_url'] in [c['url'] for c in coords], 'leader_url is a coordinator URL')
    for c in coords:
        c['url'], c['raft_addr'], c['leader'] = port(c['url']), port(c['raft_addr']), '<bool>'
    for k in ('id', 'leader_id', 'term', 'commit_index', 'last_applied'):
        me[k] = '<n>'
    # leader_ready: true only when the leader answered
    me['state'], me['leader_url'], me['leader_ready'] = '<state>', '<url>', '<bool>'
    check(doc['map_epoch'] >= 1, 'map epoch')
    doc['map_epoch'] = '<n>'
    for n in doc['nodes']:
        check(n['heartbeat_ms'] > 0, 'heartbeat')
        n['heartbeat_ms'] = '<ms>'
        n['replicas'] = '<n>'  # reported on the node's next heartbeat
        n['url'], n['http_url'] = port(n['url']), port(n['http_url'])
        n['search_url'] = port(n['search_url'])
    doc['nodes'].sort(key=lambda n: n['id'])  # registration order varies
elif kind in ('info', 'list'):
    for c in doc if kind == 'list' else [doc]:
        for p in c['partitions']:
            check(p['epoch'] >= 1, 'partition epoch')
            p['epoch'] = '<n>'
            p['nodes'].sort()  # which replica is primary varies
elif kind == 'bench':
    for r in doc['results']:
        check(r['qps'] > 0 and r['seconds'] > 0 and 0 < r['p50_ms'] <= r['p99_ms'], 'timings')
        check(r['recall'] >= 0.95, 'recall >= 0.95')
        for k in ('qps', 'seconds', 'p50_ms', 'p99_ms', 'recall'):
            r[k] = '<t>'
    doc['queries'] = re.sub(r'.*/', '', doc['queries'])
elif kind == 'search':
    # scores to 6 digits: the last bits depend on the CPU's distance kernels
    for r in doc:
        r['score'] = float('%.6g' % r['score'])
elif kind == 'get':
    pass
else:
    sys.exit('unknown kind ' + kind)
sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + '\n')
