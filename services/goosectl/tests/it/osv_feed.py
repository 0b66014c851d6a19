"""A local OSV API (POST /v1/query, https://google.github.io/osv.dev/post-v1-query/) over a
file of OSV records, for pip-audit's `--vulnerability-service osv --osv-url`: the test machine
cannot reach api.osv.dev, so the scanner's feed is served here; the scanner is the real one.
Prints the port it listens on, then serves until killed."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

RECORDS = json.load(open(sys.argv[1]))


class Query(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/v1/query":
            self.send_error(404)
            return
        q = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name, version = q["package"]["name"].lower(), q["version"]
        vulns = [
            r
            for r in RECORDS
            if any(
                a["package"]["name"].lower() == name and version in a.get("versions", [])
                for a in r["affected"]
            )
        ]
        body = json.dumps({"vulns": vulns} if vulns else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Query)
print(server.server_port, flush=True)
server.serve_forever()
