# Puts a cloud environment's saved work back into a fresh container (the Worker runs this at every start,
# before any request reaches OpenCode; images/cloudflare/src/durable.ts). IN holds base.bundle (the project
# up to the agent's base commit) and, once a save exists, save.tar (save.sh's).
#
#   sh -c "$SCRIPT" restore.sh RESTORE_RECIPE BRANCH IN     (in /workspace; the Worker appends IN)
#
# Prints "restored", "base" (no save yet: the branch at its base) or "kept" (the workspace was still there:
# the container did not restart, so nothing is replaced).
set -eu
restore=$1 branch=$2 in=$3
trap 'rm -rf "$in"' EXIT
if [ -e .git ]; then echo kept; exit 0; fi
git init --quiet
git fetch --quiet --no-tags "$in/base.bundle" "+refs/palot/base:refs/palot/base"
if [ -f "$in/save.tar" ]; then
  mkdir "$in/save"
  tar -xf "$in/save.tar" -C "$in/save"
  sh -c "$restore" restore.sh "$in/save/code.bundle" refs/palot/saved "$branch"
  for f in "$in"/save/sessions/*.json; do
    if [ -e "$f" ]; then opencode import "$f" >/dev/null; fi
  done
  what=restored
else
  git checkout --quiet -B "$branch" refs/palot/base
  what=base
fi
git update-ref -d refs/palot/base
echo "$what"
