"""More helpers for the worker integration tests: streams read as bytes in pages, counts
of what receivers got, endpoint key names, and a raw TCP server that answers with bytes
that are not HTTP. (Kept apart from wkutil.py, which others edit.)"""
import collections
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


def xrange_raw(rs, key, page=1000):
    """Every entry of a stream as (id str, [(field bytes, value bytes), ...]), in pages, so
    entries with many or big fields come back exactly as stored (order kept)."""
    out = []
    start = b'-'
    while True:
        rep = rs.call('XRANGE', key, start, '+', 'COUNT', page, raw=True)
        if not rep:
            return out
        for eid, fields in rep:
            out.append((eid.decode(), list(zip(fields[0::2], fields[1::2]))))
        start = b'(' + rep[-1][0]


def dead_by_source(rs):
    """P:{q}:dead grouped by its 'source' field: {source str: [fields list, ...]}; dead
    letters without a source (jobs out of attempts) under ''."""
    by = collections.defaultdict(list)
    for _, fields in xrange_raw(rs, u.DEAD):
        d = dict(fields)
        by[d.get(b'source', b'').decode('utf-8', 'replace')].append(fields)
    return by


def entry_size(fields):
    """Bytes of an entry's field names and values."""
    return sum(len(k) + len(v) for k, v in fields)


def brief(fields, n=12, width=80):
    """A short printable view of an entry for assertion messages."""
    shown = [(k[:width], v[:width]) for k, v in fields[:n]]
    more = ' ... (%d fields, %d bytes)' % (len(fields), entry_size(fields)) \
        if len(fields) > n else ''
    return '%r%s' % (shown, more)


def webhook_ids(rcv, path=None):
    """Counter of webhook-id over the requests a harness Receiver got (one path or all)."""
    with rcv.lock:
        reqs = [r for r in rcv.requests if path is None or r.path == path]
    return collections.Counter(r.headers.get('webhook-id') for r in reqs)


def ep_keys(ep_id, prefix=u.P):
    """The per-endpoint keys (docs/keys.md): endpoint hash, failures counter, log stream."""
    return {'endpoint': '%s:{%s}:endpoint' % (prefix, ep_id),
            'failures': '%s:{%s}:failures' % (prefix, ep_id),
            'log': '%s:{%s}:log' % (prefix, ep_id)}


def pending(rs):
    """(events pending in group fanout, jobs pending in group deliver); 0 for a group or
    stream that does not exist yet."""
    out = []
    for key, group in ((u.EVENTS, 'fanout'), (u.JOBS, 'deliver')):
        try:
            out.append(rs.call('XPENDING', key, group)[0])
        except h.RedisError:
            out.append(0)
    return tuple(out)


class RawServer:
    """A TCP server on 127.0.0.1 that reads one HTTP request per connection (headers and
    a Content-Length body), writes `reply` (bytes that are not an HTTP response) and
    closes. Counts connections and complete requests read; keeps the requests' raw
    header blocks."""

    def __init__(self, reply=b'hello\r\n'):
        self.reply = reply
        self.lock = threading.Lock()
        self.connections = 0
        self.heads = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path='/raw'):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            c.settimeout(10)
            buf = b''
            while b'\r\n\r\n' not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, body = buf.split(b'\r\n\r\n', 1)
            n = 0
            for line in head.split(b'\r\n')[1:]:
                k, _, v = line.partition(b':')
                if k.strip().lower() == b'content-length':
                    n = int(v.strip())
            while len(body) < n:
                chunk = c.recv(65536)
                if not chunk:
                    break
                body += chunk
            with self.lock:
                self.heads.append(head)
            c.sendall(self.reply)
            time.sleep(0.05)  # let the client read it before the FIN
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def requests(self):
        with self.lock:
            return list(self.heads)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def call_big(rs, *args):
    """One command with very many or very big arguments (an XADD of 50,000 fields) on a
    connection of its own; the harness client builds messages by concatenation, which is
    quadratic at this size. Returns the reply to a command answering a bulk or simple
    string (an XADD); raises h.RedisError on an error reply."""
    parts = [b'*%d\r\n' % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts += [b'$%d\r\n' % len(b), b, b'\r\n']
    with socket.create_connection(('127.0.0.1', rs.port), timeout=60) as s:
        if rs.password:
            s.sendall(b'*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n' % (len(rs.password),
                                                             rs.password.encode()))
        s.sendall(b''.join(parts))
        buf = b''
        need_auth = bool(rs.password)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError('redis closed the connection')
            buf += chunk
            if need_auth and b'\r\n' in buf:
                line, buf = buf.split(b'\r\n', 1)
                if line != b'+OK':
                    raise h.RedisError(line.decode())
                need_auth = False
            if need_auth or b'\r\n' not in buf:
                continue
            line, rest = buf.split(b'\r\n', 1)
            if line[:1] == b'-':
                raise h.RedisError(line[1:].decode())
            if line[:1] == b'+':
                return line[1:].decode()
            if line[:1] == b'$':
                n = int(line[1:])
                if n < 0:
                    return None
                if len(rest) >= n + 2:
                    return rest[:n].decode()
                continue
            raise h.RedisError('unexpected reply %r' % line[:40])


def events_not_fanned_out(rs, ids, type_='plain'):
    """XADD one event per id (data {"n":i}) and move the fanout group past them, so no
    worker makes jobs of them: a test then writes the jobs stream itself. Returns the
    stream ids, in order."""
    sids = [rs.call('XADD', u.EVENTS, '*', 'id', eid, 'type', type_, 'data', '{"n":%d}' % i)
            for i, eid in enumerate(ids)]
    try:
        rs.call('XGROUP', 'CREATE', u.EVENTS, 'fanout', '$')
    except h.RedisError as e:
        if 'BUSYGROUP' not in str(e):
            raise
        rs.call('XGROUP', 'SETID', u.EVENTS, 'fanout', '$')
    return sids
