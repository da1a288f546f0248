"""hookq stats, config check, connection handling (unreachable, AUTH, ACL user, SELECT)
and usage errors."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class StatsTest(h.TestCase):
    def test_stats_numbers(self):
        with h.RedisServer() as rs:
            # an empty Redis: no streams, no groups yet
            r = h.hookq(rs, 'stats', '--json')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout), {
                'events': 0, 'events_pending': 0, 'jobs': 0, 'jobs_pending': 0, 'delayed': 0,
                'dead': 0, 'endpoints_enabled': 0, 'endpoints_disabled': 0,
                'endpoints_unreadable': 0})
            for i in range(5):
                self.assertEqual(h.hookq(rs, 'send', 'a.b', '{"i":%d}' % i).returncode, 0)
            for i in range(3):
                rs.call('XADD', 'hookq:{q}:jobs', '*', 'event', '1-%d' % i, 'endpoint', 'ep_x',
                        'attempt', '1')
            # two jobs read by a consumer and not acknowledged: pending
            rs.call('XGROUP', 'CREATE', 'hookq:{q}:jobs', 'deliver', '0')
            rs.call('XREADGROUP', 'GROUP', 'deliver', 'c1', 'COUNT', '2', 'STREAMS',
                    'hookq:{q}:jobs', '>')
            # the events group exists but nothing is pending
            rs.call('XGROUP', 'CREATE', 'hookq:{q}:events', 'fanout', '$')
            rs.call('ZADD', 'hookq:{q}:delay', '1', 'a', '2', 'b', '3', 'c', '4', 'd')
            rs.call('XADD', 'hookq:{q}:dead', '*', 'kind', 'event', 'source', '1-1', 'reason', 'x')
            ids = []
            for u in ('a', 'b', 'c'):
                r = h.hookq(rs, 'endpoint', 'add', '--url', 'http://127.0.0.1:9/' + u)
                ids.append(json.loads(r.stdout)['id'])
            self.assertEqual(h.hookq(rs, 'endpoint', 'disable', ids[0]).returncode, 0)
            r = h.hookq(rs, 'stats', '--json')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout), {
                'events': 5, 'events_pending': 0, 'jobs': 3, 'jobs_pending': 2, 'delayed': 4,
                'dead': 1, 'endpoints_enabled': 2, 'endpoints_disabled': 1,
                'endpoints_unreadable': 0})
            text = h.hookq(rs, 'stats').stdout
            self.assertRegex(text, r'(?m)^events\s+5\b')
            self.assertRegex(text, r'(?m)^jobs pending\s+2\b')
            self.assertRegex(text, r'(?m)^delayed\s+4\b')
            self.assertRegex(text, r'(?m)^endpoints disabled\s+1\b')


class ConfigCheckTest(h.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_valid_file_prints_masked_config(self):
        path = self.write('redis:\n  url: redis://app:s3cretpw@127.0.0.1:6390/2\n'
                          'retry:\n  schedule: [1s, 5s]\n')
        r = h.hookq(None, 'config', 'check', path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('s3cretpw', r.stdout)
        self.assertIn('****', r.stdout)
        self.assertIn('127.0.0.1:6390/2', r.stdout)
        r = h.hookq(None, '--json', 'config', 'check', path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('s3cretpw', r.stdout)
        self.assertIsInstance(json.loads(r.stdout), dict)

    def test_errors_name_key_and_line(self):
        cases = [
            ('redis:\n  prefix: hookq\nretry:\n  schedule: [30s, 3x]\n', ['retry.schedule', ':4']),
            ('log:\n  level: info\n  colour: red\n', ['colour', ':3']),
            ('delivery:\n  concurrency: many\n', ['delivery.concurrency', ':2']),
        ]
        for text, words in cases:
            path = self.write(text)
            r = h.hookq(None, 'config', 'check', path)
            self.assertEqual(r.returncode, 2, text)  # a config error, like hookq-worker
            self.assertTrue(r.stderr.startswith('hookq: '), r.stderr)
            for w in words:
                self.assertIn(w, r.stderr, text)
            self.assertNotIn('usage:', r.stderr)  # the command line was fine
            self.assertEqual(r.stdout, '')
        r = h.hookq(None, 'config', 'check', '/nonexistent/hookq.yaml')
        self.assertEqual(r.returncode, 2)
        self.assertIn('/nonexistent/hookq.yaml', r.stderr)

    def test_check_without_file_uses_the_lookup_and_env(self):
        # no FILE: $HOOKQ_CONFIG (then ./hookq.yaml), then HOOKQ_* variables
        path = self.write('delivery:\n  concurrency: 70\n')
        r = h.hookq(None, 'config', 'check', env={'HOOKQ_CONFIG': path,
                                                   'HOOKQ_DELIVERY_BATCH': '5'})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('delivery.concurrency: 70\n', r.stdout)
        self.assertIn('delivery.batch: 5\n', r.stdout)
        r = h.hookq(None, 'config', 'check', env={'HOOKQ_DELIVERY_BATCH': 'x'})
        self.assertEqual(r.returncode, 2)
        self.assertIn('HOOKQ_DELIVERY_BATCH', r.stderr)

    def test_global_config_file_is_used(self):
        with h.RedisServer() as rs:
            path = self.write('redis:\n  url: %s\n  prefix: other\n' % rs.url)
            r = h.hookq(None, '-c', path, 'send', 'a.b', '{}')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(rs.call('XLEN', 'other:{q}:events'), 1)
            # environment overrides the file
            r = h.hookq(None, '-c', path, 'send', 'a.b', '{}', env={'HOOKQ_REDIS_PREFIX': 'env'})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(rs.call('XLEN', 'env:{q}:events'), 1)
            # a bad global config is a config error (exit 2) naming the key, for every
            # command that loads it; nothing is written
            bad = self.write('redis:\n  prefx: x\n')
            for args in (['stats'], ['send', 'a.b', '{}'], ['endpoint', 'list'],
                         ['endpoint', 'add', '--url', 'http://127.0.0.1:9/x'],
                         ['endpoint', 'show', 'ep_x'], ['dead', 'list'], ['retry', 'evt_x'],
                         ['deliveries', 'ep_x'], ['test', 'ep_x']):
                r = h.hookq(None, '-c', bad, *args, env={'HOOKQ_REDIS_URL': rs.url})
                self.assertEqual(r.returncode, 2, args)
                self.assertIn('prefx', r.stderr, args)
                self.assertNotIn('usage:', r.stderr, args)
                r = h.hookq(rs, *args, env={'HOOKQ_REDIS_PREFIX': 'bad:prefix'})
                self.assertEqual(r.returncode, 2, args)
                self.assertIn('redis.prefix', r.stderr, args)
            self.assertEqual(rs.call('DBSIZE'), 2)  # the two events sent above


class ConnectionTest(h.TestCase):
    def test_unreachable_redis(self):
        for args in (['send', 'a.b', '{}'], ['stats'], ['endpoint', 'list'],
                     ['endpoint', 'add', '--url', 'http://127.0.0.1:9/x']):
            r = h.hookq(None, *args, env={'HOOKQ_REDIS_URL': 'redis://127.0.0.1:1/0'})
            self.assertEqual(r.returncode, 1, args)
            self.assertEqual(r.stderr.strip(),
                             'hookq: cannot connect to Redis at 127.0.0.1:1: Connection refused')

    def test_password(self):
        with h.RedisServer(password='pw-Secret1') as rs:
            r = h.hookq(rs, 'send', 'a.b', '{}')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(rs.call('XLEN', 'hookq:{q}:events'), 1)
            r = h.hookq(rs, 'send', 'a.b', '{}',
                        env={'HOOKQ_REDIS_URL': 'redis://:wrong@127.0.0.1:%d/0' % rs.port})
            self.assertEqual(r.returncode, 1)
            self.assertTrue(r.stderr.startswith('hookq: '))
            self.assertNotIn('wrong', r.stderr)

    def test_acl_user_and_select(self):
        with h.RedisServer() as rs:
            rs.call('ACL', 'SETUSER', 'producer', 'on', '>p@ss-w0rd', '~hookq*', '+@all')
            url = 'redis://producer:p%40ss-w0rd@127.0.0.1:{}/3'.format(rs.port)
            env = {'HOOKQ_REDIS_URL': url}
            r = h.hookq(None, 'send', 'a.b', '{"db":3}', env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = h.hookq(None, 'endpoint', 'add', '--url', 'http://127.0.0.1:9/x', env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(rs.call('XLEN', 'hookq:{q}:events'), 0)  # db 0 untouched
            rs.call('SELECT', '3')
            self.assertEqual(rs.call('XLEN', 'hookq:{q}:events'), 1)
            self.assertEqual(rs.call('SCARD', 'hookq:endpoints'), 1)
            rs.call('SELECT', '0')
            r = h.hookq(None, 'stats', '--json', env=env)
            self.assertEqual(json.loads(r.stdout)['events'], 1)
            bad = 'redis://producer:nope@127.0.0.1:{}/3'.format(rs.port)
            r = h.hookq(None, 'stats', env={'HOOKQ_REDIS_URL': bad})
            self.assertEqual(r.returncode, 1)
            self.assertNotIn('nope', r.stderr)


class UsageTest(h.TestCase):
    def test_usage_errors_exit_2(self):
        cases = [[], ['nope'], ['endpoint'], ['endpoint', 'add'], ['endpoint', 'show'],
                 ['send'], ['send', 'a.b', '{}', '--bogus'], ['stats', 'extra'],
                 ['dead'], ['dead', 'purge'], ['retry'], ['deliveries'], ['test'],
                 ['config', 'check', 'a.yaml', 'b.yaml'], ['--unknown-global', 'stats']]
        for args in cases:
            r = h.hookq(None, *args, env={'HOOKQ_REDIS_URL': 'redis://127.0.0.1:1/0'})
            self.assertEqual(r.returncode, 2, args)
            self.assertIn('usage:', r.stderr, args)
            self.assertEqual(r.stdout, '', args)

    def test_version(self):
        r = h.hookq(None, 'version')
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r'^hookq \d+\.\d+\.\d+\n$')
        r = h.hookq(None, 'version', '--json')
        self.assertIn('version', json.loads(r.stdout))


if __name__ == '__main__':
    h.main()
