#!/usr/bin/env python3
# shutdown_probe.py SERVER_EXE CATALOG_DB - how long SIGTERM takes with 200 heavy searches in flight.
#
# Starts the server (2 pool threads), opens 200 connections each sending one heavy search
# (prefix queries, limit 1000), sends SIGTERM after 1 s, and prints the server's exit line, its
# exit status, the time from SIGTERM to exit and the status each client got.
import socket, subprocess, sys, threading, time, re
exe, db = sys.argv[1], sys.argv[2]
p = subprocess.Popen([exe, "--db", db, "--port", "0", "--threads", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
line = p.stdout.readline(); print(line.strip())
port = int(re.search(r":(\d+)/", line).group(1))
results = []
lock = threading.Lock()
def client(i):
    s = socket.create_connection(("127.0.0.1", port))
    q = ["a*", "s*", "lib*", "d*+OR+e*", "p*"][i % 5]
    s.sendall(f"GET /search?q={q}&limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
            if b"\r\n\r\n" in data and b"Connection: keep-alive" in data.split(b"\r\n\r\n")[0]:
                m = re.search(rb"Content-Length: (\d+)", data)
                if len(data.split(b"\r\n\r\n",1)[1]) >= int(m.group(1)): break
    except OSError: pass
    status = data.split(b" ")[1].decode() if data else "none"
    with lock: results.append(status)
ts = [threading.Thread(target=client, args=(i,)) for i in range(200)]
for t in ts: t.start()
time.sleep(1.0)
t0 = time.monotonic(); p.terminate(); out = p.communicate()[0]; t1 = time.monotonic()
for t in ts: t.join()
print(out.strip())
print(f"exit status {p.returncode} after {1000*(t1-t0):.0f} ms; answers: " + ", ".join(f"{k}: {results.count(k)}" for k in sorted(set(results))))
