# phase NAME CMD...: runs CMD and, when HVNODE_PHASES names a file, appends
# "NAME<TAB>SECONDS<TAB>EXIT" to it (tests/ci.sh prints the table).
phase() {
    local name=$1 start rc=0
    shift
    start=$(date +%s)
    "$@" || rc=$?
    if [ -n "${HVNODE_PHASES:-}" ]; then
        printf '%s\t%s\t%s\n' "$name" "$(($(date +%s) - start))" "$rc" >>"$HVNODE_PHASES"
    fi
    return $rc
}
