"""GET /v1/stream (Server-Sent Events) and POST /v1/stream/tokens, against the real
hookq-api and redis-server: frames, resume without gap or repeat (the npm `eventsource`
client, which reconnects with Last-Event-ID, and ?last_event_id=), filters, tenant
isolation, stream tokens, the reset event after trimming, heartbeats, a slow consumer cut
off while another client keeps up, shutdown, and a Redis restart.

Events are published with XADD on P:{q}:events (the producer contract, docs/keys.md),
so these tests do not depend on POST /v1/events."""
import json
import os
import queue
import select
import shutil
import socket
import subprocess
import threading
import time

import apiutil as au
import harness as h

TOOLS = os.path.join(h.SRC, 'tests', 'tools')
EVENTS = 'hookq:{q}:events'


def publish(rs, n, type_='bulk.a', tenant=None, start=0, data=None, chunk=200):
    """XADD n events (data {"i": start+k} unless data is given); returns their ids."""
    ids = []
    for a in range(0, n, chunk):
        cmds = []
        for k in range(a, min(n, a + chunk)):
            f = ['XADD', EVENTS, '*', 'type', type_, 'data',
                 data if data is not None else json.dumps({'i': start + k})]
            if tenant:
                f += ['tenant', tenant]
            cmds.append(f)
        for r in rs.pipeline(cmds):
            if isinstance(r, Exception):
                raise r
            ids.append(r)
    return ids


class RawStream:
    """GET /v1/stream on a raw socket: the exact bytes, chunked decoding, SSE frames."""

    def __init__(self, port, path='/v1/stream', key=au.ADMIN, headers=None, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(('127.0.0.1', port))
        hd = dict(headers or {})
        if key:
            hd['Authorization'] = 'Bearer ' + key
        req = 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n' % path
        req += ''.join('%s: %s\r\n' % kv for kv in hd.items()) + '\r\n'
        self.sock.sendall(req.encode())
        self.raw = b''      # bytes not yet decoded
        self.text = ''      # decoded body not yet split into frames
        self.pending = []   # frames split off and not yet returned
        self.ended = False  # the terminal chunk arrived
        self.eof = False    # the server closed the connection
        self.status = None
        self.headers = {}
        self.body = None    # a non-stream answer's body

    def _recv(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            k = self.sock.recv(65536)
        except (ConnectionResetError, OSError):
            k = b''
        if not k:
            self.eof = True
            return False
        self.raw += k
        return True

    def head(self, timeout=10):
        deadline = time.monotonic() + timeout * h.SLOW
        while b'\r\n\r\n' not in self.raw:
            if self.eof or time.monotonic() > deadline:
                raise AssertionError('no response head: %r' % self.raw[:300])
            self._recv(deadline - time.monotonic())
        head, self.raw = self.raw.split(b'\r\n\r\n', 1)
        lines = head.decode().split('\r\n')
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in
                        (ln.split(':', 1) for ln in lines[1:])}
        if 'content-length' in self.headers:  # an error answer, not a stream
            n = int(self.headers['content-length'])
            while len(self.raw) < n and not self.eof:
                self._recv(deadline - time.monotonic())
            self.body = json.loads(self.raw[:n])
        return self.status

    def _decode(self):
        while not self.ended:
            if b'\r\n' not in self.raw:
                return
            size_line, rest = self.raw.split(b'\r\n', 1)
            size = int(size_line, 16)
            if len(rest) < size + 2:
                return
            if size == 0:
                self.ended = True
                return
            self.text += rest[:size].decode()
            assert rest[size:size + 2] == b'\r\n', rest[size:size + 10]
            self.raw = rest[size + 2:]

    def frames(self, want=1, timeout=10):
        """The next `want` frames (text blocks ending in a blank line) as lists of lines;
        fewer when the stream ended or timeout passed first."""
        deadline = time.monotonic() + timeout * h.SLOW
        while True:
            self._decode()
            while '\n\n' in self.text:
                fr, self.text = self.text.split('\n\n', 1)
                self.pending.append(fr.split('\n'))
            left = deadline - time.monotonic()
            if len(self.pending) >= want or self.ended or self.eof or left <= 0:
                out, self.pending = self.pending[:want], self.pending[want:]
                return out
            self._recv(left)

    def drain(self, timeout=10):
        """Every frame until the body ends or the connection closes (or timeout)."""
        out = []
        deadline = time.monotonic() + timeout * h.SLOW
        while not (self.ended or self.eof) and time.monotonic() < deadline:
            out += self.frames(10 ** 6, timeout=min(0.5, deadline - time.monotonic()))
        return out + self.frames(10 ** 6, timeout=0)

    def events(self, want, timeout=10):
        """The next `want` event frames as dicts (id, event, data parsed); comments and
        retry frames are skipped."""
        got = []
        deadline = time.monotonic() + timeout * h.SLOW
        while len(got) < want:
            left = deadline - time.monotonic()
            frs = self.frames(1, max(0.01, left))
            for fr in frs:
                d = frame_dict(fr)
                if 'event' in d:
                    got.append(d)
            if not frs and (left <= 0 or self.ended or self.eof):
                break
        return got

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def frame_dict(lines):
    d = {}
    for ln in lines:
        if ln.startswith(':'):
            d.setdefault('comments', []).append(ln)
            continue
        k, _, v = ln.partition(': ')
        d[k] = json.loads(v) if k == 'data' else v
    return d


class SseClient:
    """tests/tools/sse_client.mjs (npm eventsource 4) as a subprocess; its JSON lines are
    collected by a thread."""

    def __init__(self, url, key=au.ADMIN, types=('bulk.a',), seconds=60, **opts):
        node = shutil.which('node')
        if not node:
            raise AssertionError('node is not installed: tests/run.sh installs it')
        if not os.path.isdir(os.path.join(TOOLS, 'node_modules', 'eventsource')):
            raise AssertionError('eventsource is not installed in tests/tools: run `npm '
                                 'install` there (tests/run.sh does)')
        argv = [node, os.path.join(TOOLS, 'sse_client.mjs'), '--url', url,
                '--types', ','.join(types), '--seconds', str(seconds * h.SLOW)]
        if key:
            argv += ['--key', key]
        for k, v in opts.items():
            argv += ['--' + k.replace('_', '-'), str(v)]
        self.proc = subprocess.Popen(argv, cwd=TOOLS, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def seen(self, ev='event'):
        return [x for x in list(self.lines) if x['ev'] == ev]

    def wait(self, pred, timeout=20):
        if not h.wait_until(lambda: pred(self), timeout):
            raise AssertionError('sse client: condition not met; saw %d lines, last %r; '
                                 'stderr %s' % (len(self.lines), self.lines[-3:],
                                                self.stderr()))

    def stderr(self):
        if self.proc.poll() is None:
            return '(running)'
        return self.proc.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Proxy:
    """A TCP relay to hookq-api whose connections the test can cut (a network drop: the
    EventSource must reconnect on its own, with Last-Event-ID)."""

    def __init__(self, port):
        self.target = port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.pairs = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            u = socket.create_connection(('127.0.0.1', self.target))
            with self.lock:
                self.pairs.append((c, u))
                self.accepted += 1
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                k = a.recv(65536)
                if not k:
                    break
                b.sendall(k)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for c, u in pairs:
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.stopping = True
        self.ls.close()
        self.drop()


def token(api, body, key=au.ADMIN):
    return api.ok('POST', '/v1/stream/tokens', body, key=key, want=(201,))


class StreamFrames(h.TestCase):
    def test_headers_frames_and_skipped_entries(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            st = RawStream(api.port)
            self.assertEqual(st.head(), 200)
            self.assertTrue(st.headers['content-type'].startswith('text/event-stream'))
            self.assertEqual(st.headers['cache-control'], 'no-cache')
            self.assertEqual(st.headers['x-accel-buffering'], 'no')
            self.assertEqual(st.headers.get('transfer-encoding'), 'chunked')
            self.assertEqual(st.frames(1), [['retry: 3000']])
            # raw newlines between JSON tokens, newline escapes inside strings
            data = '{"a": "x\\ny",\n  "b":\r\n [1, 2]}'
            ids = publish(rs, 1, 'task:created', tenant='acme', data=data)
            # what the fanout dead-letters (bad data, no type) is no event
            rs.call('XADD', EVENTS, '*', 'type', 'task:created', 'data', '{not json')
            rs.call('XADD', EVENTS, '*', 'data', '1')
            ids += publish(rs, 1, 'mission.done', data='7')
            frs = st.frames(2)
            self.assertEqual(len(frs), 2, frs)
            f = frs[0]
            self.assertEqual(f[0], 'id: ' + ids[0])
            self.assertEqual(f[1], 'event: task:created')
            self.assertEqual(len(f), 3, f)  # one data line: the newlines did not split it
            self.assertTrue(f[2].startswith('data: '))
            body = json.loads(f[2][6:])
            self.assertEqual(list(body), ['id', 'type', 'timestamp', 'tenant', 'data'])
            self.assertEqual(body['id'], 'evt_' + ids[0].replace('-', ''))
            self.assertEqual(body['type'], 'task:created')
            self.assertEqual(body['tenant'], 'acme')
            self.assertEqual(body['data'], {'a': 'x\ny', 'b': [1, 2]})
            ms = int(ids[0].split('-')[0])
            self.assertEqual(body['timestamp'],
                             time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ms // 1000)) +
                             '.%03dZ' % (ms % 1000))
            f = frame_dict(frs[1])
            self.assertEqual(f['id'], ids[1])
            self.assertEqual(f['event'], 'mission.done')
            self.assertEqual(list(f['data']), ['id', 'type', 'timestamp', 'data'])
            self.assertEqual(f['data']['data'], 7)
            st.close()

    def test_bad_parameters(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            for path, hdrs, field in (
                    ('/v1/stream?last_event_id=12', {}, 'last_event_id'),
                    ('/v1/stream?last_event_id=1-2-3', {}, 'last_event_id'),
                    ('/v1/stream', {'Last-Event-ID': 'abc'}, 'last_event_id'),
                    ('/v1/stream?last_event_id=1-0', {'Last-Event-ID': 'x-1'}, 'last_event_id'),
                    ('/v1/stream?events=task:*,', {}, 'events'),
                    ('/v1/stream?events=a*b', {}, 'events')):
                st, hd, body = api.call('GET', path, headers=hdrs)
                au.problem_ok(self, st, hd, body, 400, 'invalid_parameter')
                self.assertEqual(body['field'], field, path)
            st, hd, body = api.call('GET', '/v1/stream', key=None)
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')
            st, hd, body = api.call('GET', '/v1/stream', key='not-a-key-0123456789')
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')
            st, hd, body = api.call('POST', '/v1/stream')
            au.problem_ok(self, st, hd, body, 405, 'method_not_allowed')


class StreamResume(h.TestCase):
    def test_eventsource_resumes_exactly_once(self):
        """300 events, published while two EventSources read: one loses its connection
        mid-run (a network drop: it reconnects by itself with Last-Event-ID), the other
        closes and reopens with ?last_event_id=. Each sees all 300 once, in order."""
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            px = Proxy(api.port)
            try:
                a = SseClient('http://127.0.0.1:%d/v1/stream' % px.port)
                b = SseClient(api.url('/v1/stream?events=bulk.*'), reopen_after=120)
                with a, b:
                    a.wait(lambda c: c.seen('open'))
                    b.wait(lambda c: c.seen('open'))
                    ids = []
                    for k in range(30):  # ~10 events every 30 ms while both read
                        ids += publish(rs, 10, start=len(ids))
                        if k == 10:
                            a.wait(lambda c: len(c.seen()) >= 60)
                            px.drop()
                        time.sleep(0.03)
                    for c in (a, b):
                        c.wait(lambda c: len(c.seen()) >= 300, timeout=30)
                    time.sleep(0.3)  # a repeat would arrive now
                    for c, opens in ((a, 2), (b, 2)):
                        got = c.seen()
                        self.assertEqual([e['id'] for e in got], ids)
                        self.assertEqual([e['data']['data']['i'] for e in got], list(range(300)))
                        self.assertEqual(len(c.seen('open')), opens, c.lines[:3])
                    self.assertGreaterEqual(px.accepted, 2)  # a really reconnected
                    self.assertEqual(len(b.seen('reopen')), 1)
                    self.assertEqual(a.seen('reset') + b.seen('reset'), [])
            finally:
                px.close()

    def test_header_wins_and_catchup_pages(self):
        """A backlog longer than one XRANGE page (128) arrives whole, live events after it
        without a gap; the Last-Event-ID header beats ?last_event_id= (EventSource keeps
        the URL's and sends a newer header)."""
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            ids = publish(rs, 700, data='{"pad":"%s"}' % ('p' * 300))
            st = RawStream(api.port, '/v1/stream?last_event_id=' + ids[0],
                           headers={'Last-Event-ID': ids[9]})
            self.assertEqual(st.head(), 200)
            live = []
            got = st.events(300)
            live = publish(rs, 50, start=700)  # published while it is still catching up
            got += st.events(700 - 10 - 300 + 50, timeout=20)
            self.assertEqual([e['id'] for e in got], ids[10:] + live)
            self.assertEqual(st.events(1, timeout=0.5), [])  # nothing twice
            st.close()
            # resuming from the newest id: nothing old, then the new
            st = RawStream(api.port, '/v1/stream?last_event_id=' + live[-1])
            self.assertEqual(st.head(), 200)
            self.assertEqual(st.events(1, timeout=0.5), [])
            more = publish(rs, 2, start=800)
            self.assertEqual([e['id'] for e in st.events(2)], more)
            st.close()
            # a never-trimmed stream from 0-0: everything, no reset
            st = RawStream(api.port, '/v1/stream?last_event_id=0-0')
            st.head()
            frs = st.frames(3)
            self.assertEqual(frs[0], ['retry: 3000'])
            self.assertEqual(frame_dict(frs[1])['id'], ids[0])
            st.close()

    def test_backlog_over_the_buffer_is_not_a_cut(self):
        """A backlog ten times api.stream_buffer arrives whole while live events keep
        coming: catching up is paced by the reader, never a slow consumer."""
        with h.RedisServer() as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_BUFFER': '64KiB'}) as api:
            pad = 'b' * 1000
            ids = publish(rs, 640, data='{"pad":"%s"}' % pad)
            with SseClient(api.url('/v1/stream?last_event_id=0-0')) as c:
                c.wait(lambda c: c.seen('open'))
                for k in range(10):
                    ids += publish(rs, 20, data='{"pad":"%s"}' % pad)
                    time.sleep(0.02)
                c.wait(lambda c: len(c.seen()) >= len(ids), timeout=30)
                time.sleep(0.3)
                self.assertEqual([e['id'] for e in c.seen()], ids)
                self.assertEqual(c.seen('error_event'), [])
                self.assertEqual(len(c.seen('open')), 1)
            self.assertNotIn('cut off', api.log())

    def test_backlog_paced_for_a_stalled_reader(self):
        """One short XRANGE page (127 events of 2 KB) is four times api.stream_buffer: a
        reader that stalls while it catches up, with a live event arriving meanwhile, is
        not cut off; it gets everything once it reads."""
        with h.RedisServer() as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_BUFFER': '64KiB'}) as api:
            ids = publish(rs, 127, data='{"pad":"%s"}' % ('s' * 2000))
            st = RawStream(api.port, headers={'Last-Event-ID': '0-0'}, rcvbuf=4096)
            self.assertEqual(st.head(), 200)
            time.sleep(1)  # not reading
            ids += publish(rs, 1)
            time.sleep(1)
            got = st.events(128, timeout=10)
            self.assertEqual([(e['event'], e.get('id')) for e in got], [('bulk.a', i) for i in ids])
            self.assertNotIn('cut off', api.log())
            st.close()

    def test_reset_after_trim(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            ids = publish(rs, 10)
            rs.call('XTRIM', EVENTS, 'MINID', ids[5])
            st = RawStream(api.port, headers={'Last-Event-ID': ids[2]})
            st.head()
            frs = st.frames(3)
            self.assertEqual(frs[0], ['retry: 3000'])
            self.assertEqual(frs[1][0], 'event: reset')
            self.assertEqual(frame_dict(frs[1])['data'],
                             {'reason': 'trimmed', 'requested': ids[2], 'oldest': ids[5]})
            self.assertNotIn('id', frame_dict(frs[1]))  # the client's last id stays its own
            got = [frame_dict(frs[2])] + st.events(4)
            self.assertEqual([e['id'] for e in got], ids[5:])
            st.close()
            # still inside what is kept: no reset
            st = RawStream(api.port, headers={'Last-Event-ID': ids[6]})
            st.head()
            frs = st.frames(4)
            self.assertEqual([frame_dict(f).get('event') for f in frs],
                             [None, 'bulk.a', 'bulk.a', 'bulk.a'])
            st.close()
            # everything trimmed: reset with no oldest, then the live feed
            rs.call('XTRIM', EVENTS, 'MAXLEN', '0')
            with SseClient(api.url('/v1/stream?last_event_id=' + ids[7])) as c:
                c.wait(lambda c: c.seen('reset'))
                self.assertEqual(c.seen('reset')[0]['data'],
                                 {'reason': 'trimmed', 'requested': ids[7], 'oldest': None})
                new = publish(rs, 3)
                c.wait(lambda c: len(c.seen()) >= 3)
                self.assertEqual([e['id'] for e in c.seen()], new)


class StreamAccess(h.TestCase):
    def test_filters(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            st = RawStream(api.port, '/v1/stream?events=task:*,mission.done')
            st.head()
            want = []
            for t in ('task:created', 'mission.started', 'mission.done', 'task:x.y', 'other'):
                i = publish(rs, 1, t)
                if t.startswith('task:') or t == 'mission.done':
                    want += i
            got = st.events(3)
            self.assertEqual([e['id'] for e in got], want)
            self.assertEqual([e['event'] for e in got], ['task:created', 'mission.done',
                                                          'task:x.y'])
            self.assertEqual(st.events(1, timeout=0.5), [])
            st.close()

    def test_tenant_isolation(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            acme_tok = token(api, {}, key=au.ACME)
            self.assertEqual(acme_tok['tenant'], 'acme')
            admin_acme = token(api, {'tenant': 'acme'})
            self.assertEqual(admin_acme['tenant'], 'acme')
            all_tok = token(api, {})
            self.assertIsNone(all_tok['tenant'])
            streams = {
                'acme_key': RawStream(api.port, key=au.ACME),
                'acme_token': RawStream(api.port, '/v1/stream?token=' + acme_tok['token'],
                                        key=None),
                'admin_acme_token': RawStream(api.port, '/v1/stream?token=' +
                                              admin_acme['token'], key=None),
                'globex_key': RawStream(api.port, key=au.GLOBEX),
                'admin': RawStream(api.port),
                'all_token': RawStream(api.port, '/v1/stream?token=' + all_tok['token'],
                                       key=None),
            }
            for s in streams.values():
                self.assertEqual(s.head(), 200)
            ids = {}
            for i, t in enumerate(['acme', 'globex', None, 'acme', 'globex', 'acme', None]):
                ids.setdefault(t, []).extend(publish(rs, 1, 'bulk.a', tenant=t, start=i))
            every = sorted(sum(ids.values(), []), key=lambda x: [int(p) for p in x.split('-')])
            expect = {'acme_key': ids['acme'], 'acme_token': ids['acme'],
                      'admin_acme_token': ids['acme'], 'globex_key': ids['globex'],
                      'admin': every, 'all_token': every}
            for name, s in streams.items():
                got = s.events(len(expect[name]))
                self.assertEqual([e['id'] for e in got], expect[name], name)
                self.assertEqual(s.events(1, timeout=0.3), [], name)  # nothing of others
                if name.startswith('acme'):
                    self.assertEqual({e['data']['tenant'] for e in got}, {'acme'})
                s.close()
            # a tenant key resuming sees its own backlog only
            st = RawStream(api.port, headers={'Last-Event-ID': '0-0'}, key=au.GLOBEX)
            st.head()
            self.assertEqual([e['id'] for e in st.events(2)], ids['globex'])
            self.assertEqual(st.events(1, timeout=0.3), [])
            st.close()

    def test_tokens(self):
        with h.RedisServer() as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_TOKEN_TTL': '30s'}) as api:
            t0 = time.time()
            tok = token(api, {'events': 'task:*, mission.done', 'ttl': 20}, key=au.ACME)
            self.assertEqual(set(tok), {'token', 'expires_at', 'events', 'tenant'})
            self.assertEqual(tok['events'], ['task:*', 'mission.done'])
            self.assertEqual(tok['tenant'], 'acme')
            self.assertTrue(tok['token'].startswith('hqs_'))
            exp = time.mktime(time.strptime(tok['expires_at'][:19], '%Y-%m-%dT%H:%M:%S')) \
                - time.timezone
            self.assertAlmostEqual(exp, t0 + 20, delta=2)
            self.assertRegex(tok['expires_at'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
            # default ttl: api.stream_token_ttl; array form; a tenant key naming itself
            d = token(api, {'events': ['a.*', 'b'], 'tenant': 'acme'}, key=au.ACME)
            exp = time.mktime(time.strptime(d['expires_at'][:19], '%Y-%m-%dT%H:%M:%S')) \
                - time.timezone
            self.assertAlmostEqual(exp, time.time() + 30, delta=2)
            self.assertEqual(d['events'], ['a.*', 'b'])
            self.assertEqual(token(api, {'events': None, 'ttl': None})['events'], ['*'])
            # the token's patterns, narrowed by ?events=, never widened
            with SseClient(api.url('/v1/stream?token=' + tok['token']), key=None,
                           types=('task:a', 'mission.done', 'other.x')) as c, \
                    SseClient(api.url('/v1/stream?events=*&token=' + tok['token']), key=None,
                              types=('task:a', 'mission.done', 'other.x')) as w, \
                    SseClient(api.url('/v1/stream?events=mission.*&token=' + tok['token']),
                              key=None, types=('task:a', 'mission.done', 'other.x')) as n:
                for x in (c, w, n):
                    x.wait(lambda x: x.seen('open'))
                want = []
                for t in ('task:a', 'other.x', 'mission.done'):
                    want.append((t, publish(rs, 1, t, tenant='acme')[0]))
                publish(rs, 1, 'task:a', tenant='globex')
                expect = {c: want[0::2], w: want[0::2], n: want[2:]}
                for x, exp_ in expect.items():
                    x.wait(lambda x: len(x.seen()) >= len(exp_))
                time.sleep(0.3)
                for x, exp_ in expect.items():
                    self.assertEqual([(e['type'], e['id']) for e in x.seen()], exp_)
            # the token is only for the stream, and not as a Bearer key
            st, hd, body = api.call('GET', '/v1/endpoints?token=' + tok['token'], key=None)
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')
            st, hd, body = api.call('GET', '/v1/stream', key=tok['token'])
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')
            st, hd, body = api.call('POST', '/v1/stream/tokens?token=' + tok['token'], {},
                                    key=None)
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')
            # tampered, malformed, expired
            bad = tok['token'][:-3] + ('AAA' if not tok['token'].endswith('AAA') else 'BBB')
            for t, why in ((bad, 'signature'), ('hqs_nope', 'malformed'), ('x', 'malformed')):
                st, hd, body = api.call('GET', '/v1/stream?token=' + t, key=None)
                au.problem_ok(self, st, hd, body, 401, 'unauthorized')
                self.assertIn(why, body['detail'])
            short = token(api, {'ttl': 1})
            st = RawStream(api.port, '/v1/stream?token=' + short['token'], key=None)
            self.assertEqual(st.head(), 200)  # valid now
            time.sleep(1.2)
            self.assertEqual(st.frames(1), [['retry: 3000']])  # an open stream stays open
            st.close()
            st, hd, body = api.call('GET', '/v1/stream?token=' + short['token'], key=None)
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')
            self.assertIn('expired', body['detail'])
            with SseClient(api.url('/v1/stream?token=' + short['token']), key=None) as x:
                x.wait(lambda x: x.seen('done'))  # EventSource gives up on a 401
                self.assertEqual(x.seen('conn_error')[0]['code'], 401)
            self.assertNotIn(tok['token'], api.log())

    def test_token_errors(self):
        with h.RedisServer() as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_TOKEN_TTL': '30s'}) as api:
            for body, code, field in (
                    ({'events': 'a*b'}, 'invalid_field', 'events'),
                    ({'events': ''}, 'invalid_field', 'events'),
                    ({'events': []}, 'invalid_field', 'events'),
                    ({'events': ['a', 7]}, 'invalid_field', 'events'),
                    ({'events': ['a,b']}, 'invalid_field', 'events'),
                    ({'events': 12}, 'invalid_field', 'events'),
                    ({'events': ','.join('type%03d.long.pattern.*' % i for i in range(40))},
                     'invalid_field', 'events'),
                    ({'ttl': 0}, 'invalid_field', 'ttl'),
                    ({'ttl': 31}, 'invalid_field', 'ttl'),
                    ({'ttl': '10'}, 'invalid_field', 'ttl'),
                    ({'ttl': 1.5}, 'invalid_field', 'ttl'),
                    ({'tenant': 'a b'}, 'invalid_field', 'tenant'),
                    ({'tenant': 5}, 'invalid_field', 'tenant'),
                    ({'tenant': 'x' * 80}, 'invalid_field', 'tenant'),
                    ({'colour': 'red'}, 'unknown_field', 'colour')):
                st, hd, out = api.call('POST', '/v1/stream/tokens', body)
                au.problem_ok(self, st, hd, out, 422, code)
                self.assertEqual(out['field'], field, body)
            for t in ('globex', None):
                st, hd, out = api.call('POST', '/v1/stream/tokens', {'tenant': t}, key=au.ACME)
                au.problem_ok(self, st, hd, out, 403, 'forbidden')
            st, hd, out = api.call('POST', '/v1/stream/tokens', raw='{"ttl":',
                                   headers={'Content-Type': 'application/json'})
            au.problem_ok(self, st, hd, out, 400, 'invalid_json')
            st, hd, out = api.call('POST', '/v1/stream/tokens', raw='[]',
                                   headers={'Content-Type': 'application/json'})
            au.problem_ok(self, st, hd, out, 400, 'invalid_json')
            st, hd, out = api.call('POST', '/v1/stream/tokens', raw='ttl=5',
                                   headers={'Content-Type': 'application/x-www-form-urlencoded'})
            au.problem_ok(self, st, hd, out, 415, 'unsupported_media_type')
            st, hd, out = api.call('POST', '/v1/stream/tokens', {}, key=None)
            au.problem_ok(self, st, hd, out, 401, 'unauthorized')
            # an empty body is {}: every default
            st, hd, out = api.call('POST', '/v1/stream/tokens', raw='')
            self.assertEqual(st, 201, out)
            self.assertEqual(out['events'], ['*'])


class StreamFlow(h.TestCase):
    def test_heartbeat(self):
        with h.RedisServer() as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_HEARTBEAT': '1s'}) as api:
            st = RawStream(api.port)
            st.head()
            t0 = time.monotonic()
            frs = st.frames(4, timeout=6)
            took = time.monotonic() - t0
            self.assertEqual(frs[0], ['retry: 3000'])
            self.assertEqual(frs[1:], [[': ping']] * 3)
            self.assertGreater(took, 2.5)  # about one a second, not a flood
            self.assertLess(took, 5.5 * h.SLOW)
            # events in between keep the pings away while they flow
            for _ in range(6):
                publish(rs, 1)
                time.sleep(0.3)
            frs = st.frames(6, timeout=5)
            self.assertEqual([frame_dict(f).get('event') for f in frs], ['bulk.a'] * 6)
            st.close()

    def test_slow_consumer_cut_off(self):
        """A client that never reads is cut off at api.stream_buffer (64 KiB here) with
        an error event; a second client on the same hub gets every event meanwhile."""
        with h.RedisServer() as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_BUFFER': '64KiB'}) as api:
            slow = RawStream(api.port, rcvbuf=4096)
            self.assertEqual(slow.head(), 200)
            with SseClient(api.url('/v1/stream')) as fast:
                fast.wait(lambda c: c.seen('open'))
                time.sleep(0.2)
                # A steady flow of 6 MB: more than the kernel's socket buffers (up to 4 MB
                # on loopback) take for the slow one. (A burst over the buffer in one go
                # would send even a client that waits back to reading from Redis: that
                # is not being slow; see test_burst_bigger_than_the_buffer.)
                pad = 'x' * 1000
                ids = []
                for k in range(600):
                    ids += publish(rs, 10, data='{"pad":"%s","k":%d}' % (pad, k))
                    time.sleep(0.002)
                fast.wait(lambda c: len(c.seen()) >= 6000, timeout=60)
                self.assertEqual([e['id'] for e in fast.seen()], ids)
            # at once when its buffer overflows; within STALL_MS (10 s) when a burst had
            # sent it back to reading from Redis before it stopped reading (valgrind)
            self.assertEventually(lambda: 'cut off' in api.log(), timeout=15)
            # the slow one: what was queued for it, its error event, then the end
            frs = slow.drain(10)
            self.assertTrue(slow.eof, 'the slow client was not disconnected')
            self.assertFalse(slow.ended)  # closed, not a clean end of the body
            self.assertEqual(frs[0], ['retry: 3000'])
            evs = [frame_dict(f) for f in frs[1:]]
            self.assertEqual(evs[-1]['event'], 'error')
            self.assertEqual(evs[-1]['data']['code'], 'slow_consumer')
            self.assertIn('reconnect with Last-Event-ID', evs[-1]['data']['detail'])
            got = [e['id'] for e in evs[:-1]]
            self.assertEqual(got, ids[:len(got)])  # what it got is a gapless prefix
            self.assertLess(len(got), 6000)
            slow.close()

    def test_stalled_catchup_cut_off(self):
        """Bursts send a client that never reads back to reading from Redis; once its
        socket is full and it takes nothing for 10 s it is cut off all the same."""
        with h.RedisServer() as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_BUFFER': '64KiB'}) as api:
            slow = RawStream(api.port, rcvbuf=4096)
            self.assertEqual(slow.head(), 200)
            time.sleep(0.3)
            ids = []
            for k in range(6):
                ids += publish(rs, 1000, data='{"pad":"%s"}' % ('w' * 1000), chunk=1000)
            self.assertEventually(lambda: 'cut off (stalled)' in api.log(), timeout=25)
            frs = slow.drain(15)
            self.assertTrue(slow.eof)
            evs = [frame_dict(f) for f in frs[1:]]
            self.assertEqual(evs[-1]['event'], 'error')
            self.assertEqual(evs[-1]['data']['code'], 'slow_consumer')
            self.assertIn('stalled', evs[-1]['data']['detail'])
            got = [e['id'] for e in evs[:-1]]
            self.assertEqual(got, ids[:len(got)])
            slow.close()

    def test_burst_bigger_than_the_buffer(self):
        """A client waiting for data gets a burst four times api.stream_buffer in one go:
        it is not cut off but reads the rest from Redis, and gets every event once."""
        with h.RedisServer() as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_BUFFER': '64KiB'}) as api:
            with SseClient(api.url('/v1/stream')) as c:
                c.wait(lambda c: c.seen('open'))
                time.sleep(0.3)
                ids = publish(rs, 250, data='{"pad":"%s"}' % ('q' * 1000), chunk=250)
                ids += publish(rs, 5)
                c.wait(lambda c: len(c.seen()) >= len(ids), timeout=20)
                time.sleep(0.3)
                self.assertEqual([e['id'] for e in c.seen()], ids)
                self.assertEqual(c.seen('error_event'), [])
                self.assertEqual(len(c.seen('open')), 1)
            self.assertNotIn('cut off', api.log())

    def test_shutdown_ends_streams(self):
        with h.RedisServer() as rs:
            api = au.ApiServer(rs).start()
            try:
                idle = RawStream(api.port)  # suspended: nothing to send
                idle.head()
                busy = RawStream(api.port, rcvbuf=4096)  # not reading: its socket is full
                busy.head()
                c = SseClient(api.url('/v1/stream'))
                c.wait(lambda c: c.seen('open'))
                publish(rs, 300, data='{"pad":"%s"}' % ('z' * 2000))
                c.wait(lambda c: len(c.seen()) == 300)
                idle.frames(2)
                t0 = time.monotonic()
                rc = api.stop()
                took = time.monotonic() - t0
                self.assertEqual(rc, 0, api.log()[-2000:])
                self.assertLess(took, 6 * h.SLOW)
                got = idle.drain(3)
                self.assertTrue(idle.ended, 'the body did not end properly')
                self.assertEqual(len([f for f in got if f[0].startswith('id: ')]), 299)
                busy.drain(5)
                self.assertTrue(busy.ended or busy.eof)
                c.wait(lambda c: c.seen('conn_error'))  # the EventSource saw the end
                c.stop()
                idle.close()
                busy.close()
            finally:
                if api.alive():
                    api.proc.kill()
                    api.proc.wait()

    def test_redis_restart_no_gap(self):
        with h.RedisServer(appendonly=True) as rs, \
                au.ApiServer(rs, env={'HOOKQ_API_STREAM_HEARTBEAT': '1s'}) as api:
            with SseClient(api.url('/v1/stream')) as c:
                c.wait(lambda c: c.seen('open'))
                ids = publish(rs, 50)
                c.wait(lambda c: len(c.seen()) >= 50)
                rs.stop()
                # while Redis is down: a stream opens (and waits), the open one stays open
                late = RawStream(api.port, headers={'Last-Event-ID': ids[39]})
                self.assertEqual(late.head(), 200)
                self.assertEqual(late.frames(2, timeout=3), [['retry: 3000'], [': ping']])
                rs.start()
                ids += publish(rs, 50, start=50)
                c.wait(lambda c: len(c.seen()) >= 100, timeout=20)
                time.sleep(0.3)
                self.assertEqual([e['id'] for e in c.seen()], ids)
                self.assertEqual(len(c.seen('open')), 1)  # never reconnected
                got = late.events(60, timeout=20)
                self.assertEqual([e['id'] for e in got], ids[40:])
                late.close()
            self.assertIn('Redis is back', api.log())


if __name__ == '__main__':
    h.main()
