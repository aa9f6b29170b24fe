"""The CI recipes in examples/ci/ run real pack commands: every `pack` line in them is checked
against the CLI's own click command tree (the subcommand exists, every option is one of its
options, an option that takes a value is given one), and against what the recipes are there to
show: --json on check, build and push, --cache-from, and the registry password only on stdin."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from packager.cli.main import cli

RECIPES = Path(__file__).resolve().parents[1] / "examples" / "ci"
GITHUB = RECIPES / "github-actions.yml"
GITLAB = RECIPES / "gitlab-ci.yml"

# A GitHub expression is substituted before the shell runs: one opaque word here.
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
_OPERATOR_CHARS = frozenset("();<>|&")
_REDIRECTIONS = {"<", ">", ">>", ">&", "&>", "&>>", "<<", "<<<", ">|", "<>"}
_PIPES = {"|", "|&"}
# Words that may precede a command without being it.
_PREFIXES = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "exec", "command", "{"}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Shell variables that hold a registry secret in the recipes (the CIs' own names included).
_SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET", re.I)
_SECRET_REFERENCE = re.compile(r"\$\{?[A-Za-z0-9_]*(PASSWORD|TOKEN|SECRET)[A-Za-z0-9_]*", re.I)
# The commands whose --json result follows a documented schema (pack.check/v1, pack.build/v1, pack.push/v1).
_JSON_COMMANDS = {"check", "build", "push"}


@dataclass(frozen=True)
class Command:
    """One simple shell command: its words (quotes removed, nothing expanded) and, when it reads a
    pipe, the words of the command writing into it."""

    recipe: str
    words: tuple[str, ...]
    stdin_from: tuple[str, ...] | None

    @property
    def is_pack(self) -> bool:
        return bool(self.words) and (self.words[0] == "pack" or self.words[0].endswith("/pack"))

    @property
    def args(self) -> tuple[str, ...]:
        return self.words[1:]

    def __str__(self) -> str:
        return f"{self.recipe}: {shlex.join(self.words)}"


def _words(line: str) -> list[str]:
    held: dict[str, str] = {}

    def hold(match: re.Match[str]) -> str:
        key = f"__expression{len(held)}__"
        held[key] = match.group(0)
        return key

    lexer = shlex.shlex(_EXPRESSION.sub(hold, line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    for key, expression in held.items():
        words = [word.replace(key, expression) for word in words]
    return words


def shell_commands(script: str, recipe: str) -> Iterator[Command]:
    """The simple commands of a shell script, line by line (backslash continuations joined),
    split at pipes, lists and subshells, without redirections or leading assignments."""
    for line in script.replace("\\\n", " ").splitlines():
        current: list[str] = []
        piped_from: tuple[str, ...] | None = None
        words = _words(line)
        i = 0
        while i < len(words):
            word = words[i]
            if word and set(word) <= _OPERATOR_CHARS:
                if word in _REDIRECTIONS:
                    if current and current[-1].isdigit():
                        current.pop()  # `2>file`: the descriptor came out as a word of its own
                    i += 2  # the operator and its target
                    continue
                command = _simple(current)
                if command:
                    yield Command(recipe, command, piped_from)
                piped_from = command if word in _PIPES else None
                current = []
            else:
                current.append(word)
            i += 1
        command = _simple(current)
        if command:
            yield Command(recipe, command, piped_from)


def _simple(words: list[str]) -> tuple[str, ...]:
    start = 0
    while start < len(words) and (words[start] in _PREFIXES or _ASSIGNMENT.match(words[start])):
        start += 1
    return tuple(words[start:])


def github_scripts(document: dict[str, Any]) -> list[str]:
    return [step["run"] for job in document["jobs"].values() for step in job.get("steps", []) if "run" in step]


def gitlab_scripts(document: dict[str, Any]) -> list[str]:
    """Every script of every job (and of `default:`): each list item is a script of its own."""
    scripts: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            scripts.append(value)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for job in document.values():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                collect(job.get(key))
    return scripts


def recipe_commands(text: str, recipe: str, kind: str) -> list[Command]:
    document = yaml.safe_load(text)
    scripts = github_scripts(document) if kind == "github" else gitlab_scripts(document)
    return [command for script in scripts for command in shell_commands(script, recipe)]


def _load(path: Path) -> list[Command]:
    return recipe_commands(path.read_text(), path.name, "github" if path == GITHUB else "gitlab")


def check_pack_args(args: Sequence[str]) -> list[str]:
    """What is wrong with `pack ARGS...` by the click command tree: an unknown subcommand or
    option, a value missing or given to a flag, too many arguments, a required option left out."""
    context = click.Context(cli)
    command: click.Command = cli
    path = ["pack"]
    rest = list(args)
    while isinstance(command, click.Group):
        if not rest or rest[0].startswith("-"):
            return [f"`{' '.join(path)}` needs a subcommand"]
        sub = command.get_command(context, rest[0])
        if sub is None:
            return [f"`{' '.join(path)}` has no subcommand `{rest[0]}`"]
        path.append(rest.pop(0))
        command = sub
    name = " ".join(path)
    options: dict[str, click.Option] = {}
    for param in command.get_params(click.Context(command)):
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                options[opt] = param
    problems: list[str] = []
    used: set[str] = set()
    positional = 0

    def takes_value(option: click.Option) -> bool:
        return not (option.is_flag or option.count)

    def consume_value(opt: str, option: click.Option, i: int) -> int:
        """Takes the option's value words after position i; returns the next position."""
        for n in range(option.nargs):
            value = rest[i + 1 + n] if i + 1 + n < len(rest) else None
            if value is None or (value.startswith("-") and value != "-"):
                problems.append(f"`{name} {opt}` takes a value and is given none")
                return i + 1 + n
        return i + 1 + option.nargs

    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":
            positional += len(rest) - i - 1
            break
        if word.startswith("--"):
            opt, has_value, _ = word.partition("=")
            option = options.get(opt)
            if option is None:
                problems.append(f"`{name}` has no option `{opt}`")
                i += 1
            elif not takes_value(option):
                if has_value:
                    problems.append(f"`{name} {opt}` is a flag and takes no value")
                used.add(option.name or opt)
                i += 1
            else:
                used.add(option.name or opt)
                i = i + 1 if has_value else consume_value(opt, option, i)
            continue
        if word.startswith("-") and len(word) > 1:
            # Short options: `-t VALUE`, `-tVALUE`, or clustered flags `-ab`.
            for j in range(1, len(word)):
                opt = f"-{word[j]}"
                option = options.get(opt)
                if option is None:
                    problems.append(f"`{name}` has no option `{opt}`")
                    i += 1
                    break
                used.add(option.name or opt)
                if takes_value(option):
                    i = i + 1 if j + 1 < len(word) else consume_value(opt, option, i)  # -tVALUE: the rest
                    break
            else:
                i += 1
            continue
        positional += 1
        i += 1
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if not any(a.nargs == -1 for a in arguments) and positional > sum(a.nargs for a in arguments):
        problems.append(f"`{name}` takes at most {sum(a.nargs for a in arguments)} argument(s), given {positional}")
    for param in command.params:
        if isinstance(param, click.Option) and param.required and param.name not in used:
            problems.append(f"`{name}` needs `{param.opts[0]}`")
    return problems


def _subcommand(command: Command) -> str:
    return command.args[0] if command.args else ""


def _has_option(command: Command, opt: str) -> bool:
    return any(word == opt or word.startswith(f"{opt}=") for word in command.args)


ALL = [*_load(GITHUB), *_load(GITLAB)] if GITHUB.exists() and GITLAB.exists() else []
PACK = [command for command in ALL if command.is_pack]


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=lambda p: p.name)
def test_each_recipe_checks_builds_and_pushes(path: Path) -> None:
    subcommands = [_subcommand(c) for c in _load(path) if c.is_pack]
    assert {"check", "build", "push"} <= set(subcommands), subcommands


@pytest.mark.parametrize("command", PACK, ids=str)
def test_every_pack_command_and_option_exists(command: Command) -> None:
    assert check_pack_args(command.args) == []


@pytest.mark.parametrize("command", PACK, ids=str)
def test_check_build_and_push_print_json(command: Command) -> None:
    if _subcommand(command) in _JSON_COMMANDS:
        assert _has_option(command, "--json")


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=lambda p: p.name)
def test_builds_and_pushes_use_the_registry_cache(path: Path) -> None:
    commands = [c for c in _load(path) if c.is_pack and _subcommand(c) in {"build", "push"}]
    assert commands
    for command in commands:
        assert _has_option(command, "--cache-from"), str(command)


def _is_secret_printf(words: tuple[str, ...]) -> bool:
    """`printf '%s' "$PASSWORD"`: a shell builtin, so the secret is in no process's arguments."""
    return len(words) == 3 and words[:2] == ("printf", "%s") and bool(_SECRET_REFERENCE.fullmatch(words[2].rstrip("}")))


def _is_login(command: Command) -> bool:
    """pack (push takes credentials), or `docker login`: the docker CLI's credentials are what
    BuildKit reads a private --cache-from image with."""
    return command.is_pack or command.words[:2] == ("docker", "login")


def secret_problems(commands: Sequence[Command]) -> list[str]:
    """How a recipe's commands could show the registry password: a password option on a command
    line, a secret variable used anywhere but `printf '%s' "$SECRET" |` into a login that reads
    stdin, a pack push that does not take its password that way."""
    problems: list[str] = []
    for command in commands:
        if _is_login(command):
            for word in command.args:
                if word in ("-p", "--password") or word.startswith(("--password=", "-p=")):
                    problems.append(f"a password option on the command line: {command}")
        if any(_SECRET_REFERENCE.search(word) for word in command.words):
            readers = [c for c in commands if c.stdin_from == command.words]
            if not _is_secret_printf(command.words) or not readers:
                problems.append(f"a secret outside `printf '%s' \"$SECRET\" | LOGIN`: {command}")
            for reader in readers:
                if not (_is_login(reader) and _has_option(reader, "--password-stdin")):
                    problems.append(f"a secret piped into what is not a login reading stdin: {reader}")
        if command.is_pack and _subcommand(command) == "push":
            if not (_has_option(command, "--username") and _has_option(command, "--password-stdin")):
                problems.append(f"pack push without --username and --password-stdin: {command}")
            elif command.stdin_from is None or not _is_secret_printf(command.stdin_from):
                problems.append(f"pack push --password-stdin not fed by `printf '%s' \"$SECRET\" |`: {command}")
    return problems


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=lambda p: p.name)
def test_the_password_reaches_pack_only_on_stdin(path: Path) -> None:
    commands = _load(path)
    assert [c for c in commands if c.is_pack and _subcommand(c) == "push" and _has_option(c, "--password-stdin")]
    assert secret_problems(commands) == []


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=lambda p: p.name)
def test_scripts_neither_trace_nor_inline_secrets(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    scripts = github_scripts(document) if path == GITHUB else gitlab_scripts(document)
    for script in scripts:
        # `set -x` would print every command, the password's printf included.
        assert not re.search(r"\bset\s+(-\w*x|-o\s+xtrace)", script), script
        # GitHub: a secret reaches a script through `env:`, never substituted into its text.
        assert "secrets." not in script, script


def test_the_password_variable_is_a_secret_store_reference() -> None:
    """GitHub: the password env var comes from `secrets.`; GitLab's is the CI's own job token."""
    github = yaml.safe_load(GITHUB.read_text())
    env = {k: v for scope in (github, *github["jobs"].values(), *(s for j in github["jobs"].values()
                                                                   for s in j.get("steps", [])))
           for k, v in (scope.get("env") or {}).items()}
    secret_vars = {k: v for k, v in env.items() if _SECRET_NAME.search(k)}
    assert secret_vars and all(re.fullmatch(r"\$\{\{\s*secrets\.\w+\s*\}\}", str(v)) for v in secret_vars.values())
    gitlab_printed = {c.words[2] for c in _load(GITLAB) if _is_secret_printf(c.words)}
    assert gitlab_printed == {"$CI_REGISTRY_PASSWORD"}


# The checker itself: a made-up recipe with mistakes must fail it, the same line without them pass.
_MADE_UP_GITHUB = """
jobs:
  image:
    steps:
      - run: |
          echo building
          pack build app --tag "$IMAGE:${{ github.sha }}" \\
            {flags} | tee build.json
"""
_MADE_UP_GITLAB = """
job:
  script:
    - printf '%s' "$CI_REGISTRY_PASSWORD" | pack {line} > push.json
"""


@pytest.mark.parametrize(("flags", "problem"), [
    ("--cache-frm REF --json", "has no option `--cache-frm`"),
    ("--json=yes", "is a flag and takes no value"),
    ("--platform --json", "`pack build --platform` takes a value"),
    ("-Z", "has no option `-Z`"),
    ("extra-dir --json", "takes at most 1 argument"),
])
def test_the_checker_rejects_a_made_up_flag(flags: str, problem: str) -> None:
    commands = [c for c in recipe_commands(_MADE_UP_GITHUB.replace("{flags}", flags), "made-up", "github") if c.is_pack]
    assert len(commands) == 1
    assert commands[0].words[:4] == ("pack", "build", "app", "--tag")
    assert commands[0].words[4] == "$IMAGE:${{ github.sha }}"  # kept whole, not expanded
    problems = check_pack_args(commands[0].args)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(("line", "problem"), [
    ("pusj app --image REF --json", "has no subcommand `pusj`"),
    ("push app --json", "needs `--image`"),
    ("push app --image REF --username u --password hunter2 --json", "has no option `--password`"),
])
def test_the_checker_rejects_a_made_up_push(line: str, problem: str) -> None:
    commands = [c for c in recipe_commands(_MADE_UP_GITLAB.replace("{line}", line), "made-up", "gitlab") if c.is_pack]
    assert len(commands) == 1 and commands[0].stdin_from == ("printf", "%s", "$CI_REGISTRY_PASSWORD")
    problems = check_pack_args(commands[0].args)
    assert any(problem in p for p in problems), problems


def test_the_checker_passes_real_lines() -> None:
    """The control for the tests above: lines the CLI takes pass, short options and `=` included."""
    github = recipe_commands(_MADE_UP_GITHUB.replace("{flags}", "-t x:1 -tx:2 --platform=linux/amd64 --json"),
                             "made-up", "github")
    assert [c.words[:2] for c in github if c.is_pack] == [("pack", "build")]
    assert check_pack_args(next(c for c in github if c.is_pack).args) == []
    assert check_pack_args(["push", "app", "--image", "r/x:1", "--username", "u", "--password-stdin", "--json"]) == []
    assert check_pack_args(["check", "app", "--json"]) == []


@pytest.mark.parametrize(("line", "problem"), [
    ('echo "$CI_REGISTRY_PASSWORD" | pack push app --image r/x:1 --username u --password-stdin --json',
     "a secret outside"),
    ("pack push app --image r/x:1 --username u --password-stdin --json < password.txt", "not fed by"),
    ("pack push app --image r/x:1 --json", "without --username and --password-stdin"),
    ('docker login -u u -p "$CI_REGISTRY_PASSWORD" "$CI_REGISTRY"', "a password option on the command line"),
    ("printf '%s' \"$CI_REGISTRY_PASSWORD\" > password.txt", "a secret outside"),
    ("printf '%s' \"$CI_REGISTRY_PASSWORD\" | tee password.txt", "not a login reading stdin"),
])
def test_the_secret_check_rejects_a_made_up_leak(line: str, problem: str) -> None:
    recipe = yaml.safe_dump({"job": {"script": [line]}})
    problems = secret_problems(recipe_commands(recipe, "made-up", "gitlab"))
    assert any(problem in p for p in problems), problems


def test_the_secret_check_passes_a_login_on_stdin() -> None:
    recipe = yaml.safe_dump({"job": {"script": [
        "printf '%s' \"$CI_REGISTRY_PASSWORD\" | docker login \"$CI_REGISTRY\" --username u --password-stdin",
        "printf '%s' \"$CI_REGISTRY_PASSWORD\" | pack push app --image r/x:1 --username u --password-stdin --json",
    ]}})
    assert secret_problems(recipe_commands(recipe, "made-up", "gitlab")) == []
