# Sourced by the .ci scripts: waiting on a condition with a deadline, never a
# fixed sleep and a hope.

# until_ok SECONDS CMD...: run CMD every 0.1 s until it succeeds or SECONDS pass.
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
