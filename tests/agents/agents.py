"""How each pinned agent is run: pointed at one base URL, offline, non-interactive, in a throwaway HOME.

`command(agent, home, workspace, base_url, model, prompt)` returns (argv, env) for one run. The env is built from
scratch (never from os.environ, which may hold real keys, proxies or XDG paths); every config file goes into `home`.
README.md explains each setting and how it was found. Used by conftest.py/test_agents.py and by probe.py.
"""

import json
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
BIN = HERE / "node_modules" / ".bin"
AGENTS = ("claude", "codex", "gemini")
KEY = "sk-nines-agent-test"  # the gateway under test is open; the agents insist on some key


def read_directive(agent, workspace):
    """The simulator directive that makes the model call the agent's own read tool on workspace/hello.txt."""
    path = str(pathlib.Path(workspace) / "hello.txt")
    name, args = {
        "claude": ("Read", {"file_path": path}),               # Claude Code's Read: file_path must be absolute
        "codex": ("exec_command", {"cmd": "cat hello.txt"}),    # Codex's unified-exec shell tool, run in the cwd
        "gemini": ("read_file", {"file_path": path}),           # Gemini CLI's read_file
    }[agent]
    return f"[[sim:call {name} {json.dumps(args)}]]"


def base_env(home):
    """A minimal environment: PATH (node must be found) and everything else pointing into `home`."""
    home = pathlib.Path(home)
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "USER": "agent-test",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
    }
    for d in ("TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        pathlib.Path(env[d]).mkdir(parents=True, exist_ok=True)
    return env


def claude(home, workspace, base_url, model, prompt):
    env = base_env(home)
    env.update({
        "ANTHROPIC_BASE_URL": base_url,               # the gateway root: Claude Code appends /v1/messages
        "ANTHROPIC_API_KEY": KEY,                     # sent as x-api-key (ANTHROPIC_AUTH_TOKEN would be Bearer)
        "CLAUDE_CONFIG_DIR": str(pathlib.Path(home) / ".claude"),
        # Every model Claude Code might pick goes to the same route (only the main one is used in -p runs).
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "CLAUDE_CODE_SUBAGENT_MODEL": model,
        # Offline: the first stops everything not needed to work (HEAD {base}/api/hello, the MCP registry and 1P
        # event logging at api.anthropic.com); the others name the single features again, belt and braces.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        # The gateway does the failing over: an error it returns must end the run, not be retried by the agent.
        "CLAUDE_CODE_MAX_RETRIES": "0",
    })
    argv = [str(BIN / "claude"), "-p", prompt, "--model", model, "--allowedTools", "Read"]
    return argv, env


def codex(home, workspace, base_url, model, prompt):
    env = base_env(home)
    codex_home = pathlib.Path(home) / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(f'''\
model = "{model}"
model_provider = "nines"
check_for_update_on_startup = false

[model_providers.nines]
name = "nines"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "NINES_API_KEY"
# The gateway does the failing over: an error it returns must end the run, not be retried by the agent.
request_max_retries = 0
stream_max_retries = 0

[features]
plugins = false     # else: git ls-remote / HTTPS to github.com, api.github.com, chatgpt.com (curated plugins)

[analytics]
enabled = false     # else: ab.chatgpt.com

[feedback]
enabled = false

[otel]
exporter = "none"
''')
    env.update({"CODEX_HOME": str(codex_home), "NINES_API_KEY": KEY})
    argv = [str(BIN / "codex"), "exec", "--strict-config", "--skip-git-repo-check", "--ephemeral",
            "--sandbox", "read-only", "--color", "never", "-C", str(workspace), prompt]
    return argv, env


def gemini(home, workspace, base_url, model, prompt):
    env = base_env(home)
    settings_dir = pathlib.Path(home) / ".gemini"
    settings_dir.mkdir(parents=True, exist_ok=True)
    (settings_dir / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},          # else: play.googleapis.com (Clearcut)
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False, "maxAttempts": 1},
        "ide": {"enabled": False},
    }, indent=2))
    env.update({
        "GOOGLE_GEMINI_BASE_URL": base_url,  # the gateway root: the SDK appends /v1beta/models/{model}:…
        "GEMINI_API_KEY": KEY,               # sent as x-goog-api-key
    })
    argv = [str(BIN / "gemini"), "-p", prompt, "-m", model, "--skip-trust", "--output-format", "text"]
    return argv, env


def command(agent, home, workspace, base_url, model, prompt):
    return {"claude": claude, "codex": codex, "gemini": gemini}[agent](home, workspace, base_url, model, prompt)


def installed():
    """None if the agents are installed, else why not (the only reason the tests skip)."""
    if not (HERE / "node_modules").is_dir():
        return "tests/agents/node_modules is absent: run `npm ci` in tests/agents"
    return None
