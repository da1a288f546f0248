#!/usr/bin/env python3
"""The worker's modules call each other in one direction: loop -> stages -> shared parts
-> the Redis link -> common/. Checked from the #include lines (a module can only call
what it includes), plus: only redis_link.c calls hiredis. Exit 1 naming each violation.

Layers (a file may include its own header and anything in a LOWER layer):
  0 common/ (any header not in worker/)
  1 the loop's primitives: event_loop (epoll), timer_heap
  2 outcome, http_engine, event_cache, endpoint_index, stream_entry, dead_letter, redis_link
  3 job, request, scheduler
  4 stages: intake, fanout, event_fetch, dispatch, results, reclaim
  5 worker (the loop)
  6 main
"""
import os
import re
import sys

LAYERS = {
    'event_loop': 1, 'timer_heap': 1,
    'outcome': 2, 'http_engine': 2, 'event_cache': 2, 'endpoint_index': 2,
    'stream_entry': 2, 'dead_letter': 2, 'redis_link': 2,
    'job': 3, 'request': 3, 'scheduler': 3, 'lane': 3,
    'intake': 4, 'fanout': 4, 'event_fetch': 4, 'dispatch': 4, 'results': 4, 'reclaim': 4,
    'lane_claim': 4,
    'worker': 5, 'main': 6,
}
HIREDIS_CALL = re.compile(r'\b(redis[A-Z]\w*|freeReplyObject)\s*\(')


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'worker')
    files = sorted(f for f in os.listdir(root) if f.endswith(('.c', '.h')))
    bad = []
    seen = set()
    for f in files:
        mod = f.rsplit('.', 1)[0]
        seen.add(mod)
        if mod not in LAYERS:
            bad.append('%s: module %s has no layer in tests/tools/check_layers.py' % (f, mod))
            continue
        src = open(os.path.join(root, f)).read()
        for inc in re.findall(r'#include "([^"]+)\.h"', src):
            if inc == mod or not os.path.exists(os.path.join(root, inc + '.h')):
                continue  # its own header, or common/ (layer 0), or generated
            if inc not in LAYERS:
                bad.append('%s includes %s.h, which has no layer' % (f, inc))
            elif LAYERS[inc] >= LAYERS[mod]:
                bad.append('%s (layer %d) includes %s.h (layer %d): calls must go down'
                           % (f, LAYERS[mod], inc, LAYERS[inc]))
        if f.endswith('.c') and mod != 'redis_link':
            code = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
            for m in HIREDIS_CALL.finditer(code):
                bad.append('%s calls %s: only redis_link.c talks to hiredis' % (f, m.group(1)))
    for mod in LAYERS:
        if mod not in seen:
            bad.append('layer table names %s, which is not in worker/' % mod)
    for b in bad:
        print('check_layers: ' + b)
    if bad:
        return 1
    print('check_layers: %d worker files, every include goes down a layer' % len(files))
    return 0


if __name__ == '__main__':
    sys.exit(main())
