#!/usr/bin/env python3
"""Load against `snnet serve --slo-p95-ms X`: phases of 1, N and 1 concurrent clients, each
sending Fashion-MNIST-shaped requests (safetensors `input` [1, 1, 28, 28]) back to back; prints,
per phase and per 50-request window, the stitches the server chose and the p95 latency it reported."""
import json, struct, sys, threading, time, urllib.request

url, clients, per_client = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
header = json.dumps({"input": {"dtype": "F32", "shape": [1, 1, 28, 28], "data_offsets": [0, 784 * 4]}}).encode()
header += b" " * ((8 - len(header) % 8) % 8)
body = struct.pack("<Q", len(header)) + header + struct.pack("<784f", *[((i * 37) % 255) / 255.0 for i in range(784)])

log, lock = [], threading.Lock()
def client(n, phase):
    for _ in range(n):
        t = time.time()
        req = urllib.request.Request(url + "/v1/classify", data=body, headers={"Content-Type": "application/octet-stream"})
        r = json.load(urllib.request.urlopen(req))
        with lock:
            log.append((phase, t, r["stitch"], r["latency_ms"]))

def p95(v):
    v = sorted(v); return v[min(len(v) - 1, int(0.95 * len(v)))]

for phase, k in [("calm", 1), ("loaded", clients), ("calm again", 1)]:
    ts = [threading.Thread(target=client, args=(per_client, phase)) for _ in range(k)]
    start = time.time()
    for t in ts: t.start()
    for t in ts: t.join()
    rows = sorted((x for x in log if x[0] == phase), key=lambda x: x[1])
    lat = [x[3] for x in rows]
    stitches = {}
    for x in rows: stitches[x[2]] = stitches.get(x[2], 0) + 1
    print(f"{phase}: {k} client(s), {len(rows)} requests in {time.time() - start:.1f} s, p95 {p95(lat):.2f} ms, stitches {dict(sorted(stitches.items()))}")
    for w in range(0, len(rows), 100):
        win = rows[w:w + 100]
        ws = {}
        for x in win: ws[x[2]] = ws.get(x[2], 0) + 1
        print(f"    requests {w}-{w + len(win) - 1}: p95 {p95([x[3] for x in win]):.2f} ms, stitches {dict(sorted(ws.items()))}")
metrics = urllib.request.urlopen(url + "/metrics").read().decode()
print("\n".join(l for l in metrics.splitlines() if l.startswith("snnet_slo") or l.startswith("snnet_current")))
