// Examples shown under `silo <command> --help` (kept out of meta.description so the command table stays one line each).
export const examples: Record<string, string> = {
  "": [
    "silo install python                 pull python's image, create shims (python, pip, ...) in ~/.silo/bin",
    "silo python script.py               shorthand for `silo run python script.py`",
    "npm test                            through the shim: runs inside the node sandbox",
    'eval "$(silo shellenv)"             put the shims first on PATH',
  ].join("\n"),
  run: [
    "silo run python script.py --flag    silo flags go before the tool; the rest goes to the tool untouched",
    "silo run node npm test              a sibling shim of the tool runs directly",
    "silo run -p 3000 node npm run dev   forward 127.0.0.1:3000 on the host into the sandbox",
    "silo run --timing python -c pass    where the time went",
    "silo run --timing -- python -V      a `--` before the tool ends silo's flags",
    "silo run python x.py -- -v          after the tool everything is the tool's, `--` included",
    "silo run npm install                a shim runs its tool (node) with that shim, as `silo npm install`",
    "silo run --ssh-agent node npm ci    git+ssh dependencies through your ssh-agent; the keys stay on the host",
  ].join("\n"),
  lsp: "editors launch `silo lsp python`; `silo ide vscode` writes their configuration",
  build: [
    "silo build node npm install                    project layer in .silo/node (needs a silo.toml)",
    "silo build --global python pip install httpie  a layer for all projects",
    "silo build node -- npm install                 a `--` right after the tool is silo's and is dropped",
  ].join("\n"),
  trust: "widening settings: passEnv, passFiles, passSshAgent, network allow/hostAccess, ports, extra mounts, image overrides, lsp command/install.\nAny edit of the file needs a new `silo trust`.",
  init: "silo init --no-interactive --tool python,node --port 3000 --exclude .env,secrets",
  install: [
    "silo install python                 the default version (a picker on a terminal)",
    "silo install python@3.11-slim       a version or a label (latest, lts)",
    "silo install mytool --image ghcr.io/me/tool:1.2 --shim 'mytool,helper:mytool --helper'",
  ].join("\n"),
  "shim add": "silo shim add python ipython 'ipython:python -m IPython'",
  "config network allow": "silo config network allow node api.example.com",
  quarantine: [
    "silo quarantine list                          what runs left at protected paths, moved out of their projects",
    "silo quarantine show 20261205-0803            each path, why it was moved, a diff for text files",
    "silo quarantine restore 20261205-0803 .envrc  put one back (--force replaces what is there, keeping it)",
  ].join("\n"),
};
