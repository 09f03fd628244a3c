# Puts the project's history up to the agent's base commit into a new repository in the current folder (a
# cloud environment's /workspace), from one of two sources (palot.cloud.route chooses):
# - a bundle of the project with BASE at refs/palot/base (the bundle route; the caller deletes that ref), or
# - the URL of the project's remote: a partial clone (--filter=blob:none: commits and trees now, a file's
#   contents when it is first checked out), BASE fetched by name when no branch of the remote has it.
# Nothing is checked out. On failure no repository is left behind, so the caller can use the other source.
#
#   sh -c "$SCRIPT" fetch_base.sh SOURCE BASE     (in the empty workspace)
set -eu
from=$1 base=$2
trap 'if [ $? -ne 0 ]; then rm -rf .git; fi' EXIT
git init --quiet
if [ -f "$from" ]; then
  git fetch --quiet --no-tags "$from" "+refs/palot/base:refs/palot/base"
else
  # A remote that asks for a password fails at once (no prompt to hang on); a stalled transfer ends.
  export GIT_TERMINAL_PROMPT=0
  git remote add origin "$from"
  # A host that drops packets would hold the connect for minutes: a short look first, so the caller falls
  # back to the bundle in seconds.
  timeout 20 git ls-remote --quiet origin HEAD >/dev/null
  git -c http.lowSpeedLimit=1000 -c http.lowSpeedTime=60 fetch --quiet --no-tags --filter=blob:none origin
  git cat-file -e "$base^{commit}" 2>/dev/null ||
    git -c http.lowSpeedLimit=1000 -c http.lowSpeedTime=60 fetch --quiet --no-tags --filter=blob:none origin "$base"
fi
git cat-file -e "$base^{commit}"
