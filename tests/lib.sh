# tests/lib.sh: the setup every shell test (tests/cli_*.sh) shares. Sourced, after `set -u`:
#     . "$(dirname "$0")/lib.sh"
# It provides:
#   SRC, BIN, SHARED   the checkout, the program and ../shared (from RLHF_SRC, RLHF_BIN, RLHF_SHARED);
#                      a BIN that is not an executable file fails the test at once (exit 1)
#   TMP                a fresh directory, removed at exit; a script that defines a function
#                      `at_exit` has it called first (to kill a background process, keep a copy)
#   failures           the count of failed checks, raised by `fail` and `check`
#   ok MSG... / fail MSG...      print "ok   MSG" / "FAIL MSG"
#   check ID DESC STATUS         ok when STATUS is 0, else fail
#   q RUN SQL                    runs SQL on RUN's store with the sqlite3 shell
#   skip WHY                     prints "SKIP: WHY" and exits 77, or 1 when a check already failed
#   need_files FILE...           skip naming the first FILE that does not exist
#   need_cmd CMD WHY             skip unless the program CMD is on the PATH ("CMD is needed WHY")
#   finish                       prints "all passed" (exit 0) or "N failed" (exit 1)

SRC=${RLHF_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BIN=${RLHF_BIN:-$SRC/build/rlhf}
SHARED=${RLHF_SHARED:-$SRC/../shared}
if [ ! -x "$BIN" ]; then
    echo "FAIL: the program $BIN is not built (set RLHF_BIN)"
    exit 1
fi

TMP=$(mktemp -d)
lib_exit() {
    if declare -F at_exit >/dev/null; then at_exit; fi
    rm -rf "$TMP"
}
trap lib_exit EXIT

failures=0
ok() { echo "ok   $*"; }
fail() {
    echo "FAIL $*"
    failures=$((failures + 1))
}
check() { # id, description, status of the condition
    if [ "$3" -eq 0 ]; then ok "$1 $2"; else fail "$1 $2"; fi
}
q() { sqlite3 "$1/rlhf.db" "$2"; }

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures failed"
        exit 1
    fi
    echo "all passed"
    exit 0
}
skip() { # why: a skip after failed checks is a failure
    if [ "$failures" -ne 0 ]; then finish; fi
    echo "SKIP: $1"
    exit 77
}
need_files() {
    local f
    for f in "$@"; do
        [ -e "$f" ] || skip "shared file $f not found (set RLHF_SHARED)"
    done
}
need_cmd() { # cmd, why it is needed
    command -v "$1" >/dev/null || skip "$1 is needed $2"
}
