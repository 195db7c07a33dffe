import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";

// Each script is a thin shim that hands the words typed so far to `silo __complete` (_complete.ts) and
// offers what it prints; with nothing printed the shell completes file names. The binary is called by
// name (`command silo`), the one on PATH: Homebrew writes these scripts from its own copy at install
// time (`generate_completions_from_executable`), and they must keep working after an upgrade moves it.
const SCRIPTS: Record<string, string> = {
  bash: `# silo completion for bash: eval "$(silo completion bash)" in ~/.bashrc
_silo_complete() {
  local IFS=$'\\n'
  COMPREPLY=($(command silo __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _silo_complete silo
`,
  zsh: `#compdef silo
# silo completion for zsh: eval "$(silo completion zsh)" in ~/.zshrc (after compinit), or this file as _silo
# in a directory of $fpath.
_silo() {
  local -a candidates
  candidates=("\${(@f)$(command silo __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ -n \${candidates[1]} ]]; then
    compadd -a candidates
  else
    _files
  fi
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _silo "$@"
else
  compdef _silo silo
fi
`,
  fish: `# silo completion for fish: silo completion fish > ~/.config/fish/completions/silo.fish
function __silo_complete
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l out (command silo __complete $words[2..-1] "$current" 2>/dev/null)
    if test (count $out) -gt 0
        printf '%s\\n' $out
    else
        __fish_complete_path "$current"
    end
end
complete -c silo -f -a '(__silo_complete)'
`,
};

export const completion = defineCommand({
  meta: { name: "completion", description: "Print the shell completion script for bash, zsh or fish" },
  args: { shell: { type: "positional", required: true, description: "bash, zsh or fish" } },
  run({ args }) {
    const script = SCRIPTS[args.shell];
    if (!script) throw new SiloError("E_USAGE", `silo completion: unknown shell \`${args.shell}\` (bash, zsh or fish)`);
    process.stdout.write(script);
  },
});
