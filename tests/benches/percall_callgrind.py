#!/usr/bin/env python3
"""Instructions per `query_database` call of a gateway build, counted by callgrind (so they do not depend on
the host's speed, unlike wall-clock benches): `percall_callgrind.py <sluice binary> [calls]`.

The data directory is prepared natively (generating the demo warehouse under valgrind is slow); the gateway
then runs under `valgrind --tool=callgrind --instr-atstart=no`, takes an initialize and 50 warm-up calls of
the plain read from one keep-alive HTTP client, and is instrumented (`callgrind_control -i on`) for the
measured calls only. Prints the whole process's instructions (engine included) per call. Compare two builds
by running it on each in the same session. Needs valgrind; not part of the test command.
"""
import http.client, json, os, re, signal, subprocess, sys, time, shutil
binary = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
name=os.path.basename(binary)
sql = os.environ.get("SQL", "SELECT * FROM orders LIMIT 10")
d = f"/tmp/pdc-{name}"
shutil.rmtree(d, ignore_errors=True)
# set up the data dir natively first (demo warehouse generation is slow under valgrind)
p = subprocess.Popen([binary, "up", "--data-dir", d, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
p.stdout.readline(); time.sleep(2); p.terminate(); p.wait()
out=f"/tmp/cg-{name}.out"
p = subprocess.Popen(["valgrind","--tool=callgrind","--instr-atstart=no",f"--callgrind-out-file={out}", binary, "up", "--data-dir", d, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
line = p.stdout.readline()
port = int(re.search(r":(\d+)/mcp", line).group(1))
time.sleep(3)
key = open(f"{d}/local_api_key").read().strip()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
H = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
def post(body, sid=None):
    h = dict(H)
    if sid: h["Mcp-Session-Id"] = sid; h["Mcp-Protocol-Version"] = "2025-06-18"
    c.request("POST", "/mcp", json.dumps(body), h)
    r = c.getresponse(); data = r.read()
    return r, data
r, _ = post({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"percall","version":"0"}}})
sid = r.getheader("mcp-session-id")
post({"jsonrpc":"2.0","method":"notifications/initialized"}, sid)
call = {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query_database","arguments":{"connection_name":"demo","sql":sql}}}
for i in range(50):
    r, data = post(call, sid)
assert b"order_id" in data, data[:300]
subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], check=True, capture_output=True)
for i in range(n):
    post(call, sid)
subprocess.run(["callgrind_control","-i","off",str(p.pid)],capture_output=True)
p.terminate(); p.wait()
a=subprocess.run(["callgrind_annotate",out],capture_output=True,text=True).stdout
tot=re.search(r"([\d,]+) \(100.0%\)  PROGRAM TOTALS",a) or re.search(r"([\d,]+).*PROGRAM TOTALS",a)
print(name, "Ir per call:", int(tot.group(1).replace(",",""))//n)
