import { definePlugin } from "../../src/plugin/api.ts";

const VENVS = [".venv", "venv"];

/** Python: pip cache, pyright, and activation of the project's virtualenv when one exists. */
export default definePlugin({
  name: "python",
  detect: ["pyproject.toml", "requirements.txt", "setup.py", "Pipfile", "uv.lock"],
  shims: ["python", "python3", "pip", "pip3"],
  // Per project: pip installs the wheels it built as they are, and trusts a revalidated index page.
  cache: [{ name: "pip", path: "/root/.cache/pip" }],
  lsp: { command: ["pyright-langserver", "--stdio"], install: ["pip", "install", "pyright"] },
  env(ctx): Record<string, string> {
    // Activate ./.venv or ./venv the way `source bin/activate` does: VIRTUAL_ENV plus PATH.
    const venv = VENVS.find((v) => ctx.exists(`${v}/bin/python`) || ctx.exists(`${v}/pyvenv.cfg`));
    if (!venv) return {};
    const guest = `/workspace/${venv}`;
    return { VIRTUAL_ENV: guest, PATH: `${guest}/bin:${ctx.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"}` };
  },
});
