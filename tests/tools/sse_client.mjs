// sse_client.mjs -- the reference EventSource client (npm `eventsource` 4, the WHATWG
// algorithm: Last-Event-ID on reconnect, `retry:`, named events) against GET /v1/stream.
//
//   node sse_client.mjs --url URL [--key KEY] [--types a,b] [--max N] [--reopen-after K]
//                       [--seconds S]
//
// Prints one JSON line per thing seen, for tests/integration/test_api_stream.py:
//   {"ev":"open"}                              the connection is open (each reconnect too)
//   {"ev":"event","type":T,"id":ID,"data":D}   an event of a type in --types (data parsed)
//   {"ev":"reset","data":D}                    the server's reset event
//   {"ev":"error_event","data":D}              the server's `event: error` (slow_consumer)
//   {"ev":"conn_error","code":C,"message":M}   the connection failed (EventSource retries
//                                              unless the status was not 200)
//   {"ev":"done","count":N,"last_id":ID}       exit: --max events seen, --seconds passed,
//                                              or the EventSource gave up (CLOSED)
// --key sends "Authorization: Bearer KEY" through the fetch override (a browser would use
// ?token= instead). --reopen-after K closes the EventSource after K events and opens a new
// one with ?last_event_id=<the last id> (the query-string resume; a dropped connection
// exercises the Last-Event-ID header). Lines are written with process.stdout.write so a
// test reading them sees each at once.
import { EventSource } from 'eventsource';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const types = (args.types || '').split(',').filter(Boolean);
const max = args.max ? Number(args.max) : Infinity;
const reopenAfter = args['reopen-after'] ? Number(args['reopen-after']) : 0;
const seconds = args.seconds ? Number(args.seconds) : 60;

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let count = 0;
let lastId = null;
let es = null;
let reopened = false;

function finish() {
  if (es) es.close();
  out({ ev: 'done', count, last_id: lastId });
  process.exit(0);
}

function open(url) {
  const init = {};
  if (args.key) {
    init.fetch = (input, opts) =>
      fetch(input, { ...opts, headers: { ...opts.headers, Authorization: 'Bearer ' + args.key } });
  }
  const me = new EventSource(url, init);
  es = me;
  // After close() the library may still dispatch what it had already parsed from the
  // last chunk; a browser would not, and those events came before the resume point.
  const live = () => me === es && me.readyState !== me.CLOSED;
  es.onopen = () => out({ ev: 'open' });
  es.addEventListener('error', (e) => {
    if (typeof e.data === 'string') {
      out({ ev: 'error_event', data: JSON.parse(e.data) });
      return;
    }
    out({ ev: 'conn_error', code: e.code ?? null, message: e.message ?? null });
    if (es.readyState === es.CLOSED) finish();
  });
  es.addEventListener('reset', (e) => out({ ev: 'reset', data: JSON.parse(e.data) }));
  for (const t of types) {
    es.addEventListener(t, (e) => {
      if (!live()) return;
      count++;
      lastId = e.lastEventId;
      out({ ev: 'event', type: e.type, id: e.lastEventId, data: JSON.parse(e.data) });
      if (count >= max) finish();
      if (reopenAfter && count === reopenAfter && !reopened) {
        reopened = true;
        es.close();
        const u = new URL(args.url);
        u.searchParams.set('last_event_id', lastId);
        out({ ev: 'reopen', last_id: lastId });
        open(u.toString());
      }
    });
  }
}

setTimeout(finish, seconds * 1000);
open(args.url);
