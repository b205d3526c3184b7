#!/usr/bin/python3
"""Measurements for control_veth.sh, from shaper-control's metrics endpoint
and from Prometheus' HTTP API. Standard library only.

  probe.py value URL NAME [LABEL=VALUE...]
      prints the sum of every series of NAME whose labels match (fails if none)
  probe.py rate URL TENANT SECONDS
      the tenant's upload rate in Mbit/s over SECONDS, from
      shaper_tenant_transmit_bytes_total (all classes summed)
  probe.py react URL TENANT START LIMIT_MBPS NEW_CEILING_BPS TIMEOUT
      polls every 50 ms from now on; prints the seconds from START (a Unix
      time, taken just before the edit) until the rate over the trailing 1 s
      window first falls to LIMIT_MBPS or below, that window's rate, the
      seconds until a 0.2 s window first did and until the metrics showed
      NEW_CEILING_BPS (the control installed the edit; "<=T" when it already
      had at the first poll); exits 1 after TIMEOUT s. E2E_TRACE=1 prints
      every poll's rate on stderr.
  probe.py wait URL NAME VALUE TIMEOUT [LABEL=VALUE...]
      waits until the series' sum equals VALUE; prints the seconds it took
  probe.py query PROM_URL EXPR
      runs an instant query; prints one line per series: labels and value
      (exits 1 on an API error or an empty result)
"""
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
WINDOW_S = 1.0
# Reported only: roughly when the shaper itself reacted.
SHORT_WINDOW_S = 0.2
POLL_S = 0.05


def fetch(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.read().decode()


def series_sum(text, name, want):
    total, found = 0.0, False
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        labels = dict(LABEL.findall(m.group(2) or ''))
        if all(labels.get(k) == v for k, v in want.items()):
            total += float(m.group(3))
            found = True
    if not found:
        raise SystemExit(f'probe: no series {name}{want} at the metrics endpoint')
    return total


def tx_bytes(url, tenant):
    return series_sum(fetch(url), 'shaper_tenant_transmit_bytes_total',
                      {'tenant': tenant, 'direction': 'upload'})


def parse_labels(args):
    return dict(a.split('=', 1) for a in args)


def cmd_rate(url, tenant, seconds):
    t0, b0 = time.time(), tx_bytes(url, tenant)
    time.sleep(float(seconds))
    t1, b1 = time.time(), tx_bytes(url, tenant)
    print(f'{(b1 - b0) * 8 / (t1 - t0) / 1e6:.1f}')


def cmd_react(url, tenant, start, limit_mbps, new_ceiling_bps, timeout):
    start, limit, timeout = float(start), float(limit_mbps), float(timeout)
    history = []  # (time, bytes)
    short_s = None  # when a SHORT_WINDOW_S window first fell to the limit
    reload_text = None  # when the metrics first showed the new ceiling
    trace = os.environ.get('E2E_TRACE')

    def window_mbps(now, b, window_s):
        # From the newest sample at least window_s old.
        old = [h for h in history if now - h[0] >= window_s]
        if not old:
            return None
        t0, b0 = old[-1]
        return (b - b0) * 8 / (now - t0) / 1e6

    while time.time() - start < timeout:
        now, text = time.time(), fetch(url)
        b = series_sum(text, 'shaper_tenant_transmit_bytes_total', {'tenant': tenant, 'direction': 'upload'})
        ceiling_bps = 8 * series_sum(text, 'shaper_tenant_rate_bytes_per_second',
                                     {'tenant': tenant, 'direction': 'upload', 'kind': 'ceiling'})
        if reload_text is None and ceiling_bps == float(new_ceiling_bps):
            # Already there at the first poll: it happened before, no later.
            reload_text = f'{"<=" if not history else ""}{now - start:.2f}'
        short = window_mbps(now, b, SHORT_WINDOW_S)
        history.append((now, b))
        if trace and len(history) > 1:
            t0, b0 = history[-2]
            print(f'trace {now - start:.3f} s: {(b - b0) * 8 / (now - t0) / 1e6:.0f} Mbit/s, '
                  f'ceiling {ceiling_bps / 1e6:.0f} Mbit/s', file=sys.stderr)
        if short_s is None and short is not None and short <= limit:
            short_s = now - start
        mbps = window_mbps(now, b, WINDOW_S)
        if mbps is not None and mbps <= limit:
            short_s = now - start if short_s is None else short_s
            print(f'{now - start:.2f} {mbps:.1f} {short_s:.2f} {reload_text or "never"}')
            return
        time.sleep(POLL_S)
    raise SystemExit(f'probe: {tenant} still above {limit} Mbit/s over 1 s windows {timeout} s after the edit')


def cmd_wait(url, name, value, timeout, labels):
    start, value = time.time(), float(value)
    while True:
        got = series_sum(fetch(url), name, parse_labels(labels))
        if got == value:
            print(f'{time.time() - start:.2f}')
            return
        if time.time() - start > float(timeout):
            raise SystemExit(f'probe: {name}{labels} is {got}, not {value}, after {timeout} s')
        time.sleep(POLL_S)


def cmd_query(prom, expr):
    url = prom + '/api/v1/query?' + urllib.parse.urlencode({'query': expr})
    reply = json.loads(fetch(url))
    if reply.get('status') != 'success':
        raise SystemExit(f'probe: query {expr!r}: {reply}')
    result = reply['data']['result']
    if not result:
        raise SystemExit(f'probe: query {expr!r} returned nothing')
    for s in result:
        labels = ','.join(f'{k}={v}' for k, v in sorted(s['metric'].items()))
        print(f'{labels} {s["value"][1]}')


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == 'value':
        print(series_sum(fetch(args[0]), args[1], parse_labels(args[2:])))
    elif cmd == 'rate':
        cmd_rate(*args)
    elif cmd == 'react':
        cmd_react(*args)
    elif cmd == 'wait':
        cmd_wait(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == 'query':
        cmd_query(*args)
    else:
        raise SystemExit(f'probe: unknown command {cmd!r}\n{__doc__}')


if __name__ == '__main__':
    main(sys.argv)
