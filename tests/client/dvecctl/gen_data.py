#!/usr/bin/env python3
"""gen_data.py DIR - the small input files of dvecctl.sh, made with the standard library only.

small.fvecs (200 x 4, ids 0..199), other.npy (200 x 4, loaded with --id-offset 1000),
points.jsonl (50 points with payloads, two with UUID ids), q.fvecs + gt.ivecs (20 queries and
their true 10 nearest ids over both files, squared L2), and bad inputs: d8.fvecs (8 dims),
bad.jsonl (line 3 malformed), deep.jsonl (line 31's payload nests deeper than the
protocol's 64 levels: the batch holding it fails to send), f64.npy, fortran.npy, 3d.npy, nomagic.npy.
"""
import json
import os
import random
import struct
import sys

d = sys.argv[1]
DIM = 4


def rows(seed, n, dim=DIM):
    rnd = random.Random(seed)
    # float32-exact values, so the files and the ground truth agree bit for bit
    return [[struct.unpack('<f', struct.pack('<f', rnd.random()))[0] for _ in range(dim)]
            for _ in range(n)]


def fvecs(path, rs, fmt='f'):
    with open(os.path.join(d, path), 'wb') as f:
        for r in rs:
            f.write(struct.pack('<i', len(r)) + struct.pack('<%d%s' % (len(r), fmt), *r))


def npy(path, rs, descr='<f4', fortran=False, shape=None, magic=b'\x93NUMPY'):
    shape = shape or (len(rs), len(rs[0]))
    hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, 'True' if fortran else 'False', ', '.join(str(s) for s in shape) +
        (',' if len(shape) == 1 else ''))
    hdr += ' ' * (64 - (10 + len(hdr) + 1) % 64) + '\n'
    fmt = '<%dd' if descr == '<f8' else '<%df'
    with open(os.path.join(d, path), 'wb') as f:
        f.write(magic + b'\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode())
        for r in rs:
            f.write(struct.pack(fmt % len(r), *r))


small = rows(1, 200)
other = rows(2, 200)
fvecs('small.fvecs', small)
npy('other.npy', other)

colors = ['red', 'green', 'blue']
with open(os.path.join(d, 'points.jsonl'), 'w') as f:
    for i, r in enumerate(rows(3, 50)):
        pid = i
        if i == 10:
            pid = '550e8400-e29b-41d4-a716-446655440000'
        if i == 11:
            pid = '6ba7b810-9dad-11d1-80b4-00c04fd430c8'
        f.write(json.dumps({'id': pid, 'vector': r,
                            'payload': {'n': i, 'color': colors[i % 3]}}) + '\n')
        if i == 20:
            f.write('\n')  # blank lines are skipped

# queries near rows of both files; ground truth by brute force over every loaded id
base = [(i, v) for i, v in enumerate(small)] + [(1000 + i, v) for i, v in enumerate(other)]
qs = []
for i in range(20):
    src = small[i * 7] if i % 2 == 0 else other[i * 5]
    qs.append([struct.unpack('<f', struct.pack('<f', x + 0.01))[0] for x in src])
fvecs('q.fvecs', qs)
gt = []
for q in qs:
    dist = sorted((sum((a - b) ** 2 for a, b in zip(q, v)), pid) for pid, v in base)
    gt.append([pid for _, pid in dist[:10]])
fvecs('gt.ivecs', gt, fmt='i')

fvecs('d8.fvecs', rows(4, 5, 8))
with open(os.path.join(d, 'bad.jsonl'), 'w') as f:
    f.write('{"id": 1, "vector": [1, 2, 3, 4]}\n')
    f.write('{"id": 2, "vector": [1, 2, 3, 4]}\n')
    f.write('{"id": 3, "vector": [1, 2, 3, 4}\n')
    f.write('{"id": 4, "vector": [1, 2, 3, 4]}\n')
with open(os.path.join(d, 'deep.jsonl'), 'w') as f:
    for i, r in enumerate(rows(6, 50)):
        payload = {'n': i}
        if i == 30:
            for _ in range(70):
                payload = {'x': payload}
        f.write(json.dumps({'id': 5000 + i, 'vector': r, 'payload': payload}) + '\n')
npy('f64.npy', rows(5, 3), descr='<f8')
npy('fortran.npy', rows(5, 3), fortran=True)
npy('3d.npy', rows(5, 4), shape=(2, 2, 4))
npy('nomagic.npy', rows(5, 3), magic=b'\x93NUMPZ')
