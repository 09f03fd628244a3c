# Puts a cloud environment's saved work back into a fresh container (the Worker runs this at every start,
# before any request reaches OpenCode; images/cloudflare/src/durable.ts). The project's history comes from
# IN/base.bundle when the environment was made by the bundle route, else from REMOTE (a partial clone, the
# remote route; fetch_base.sh does both). IN holds, once a save exists, save.tar (save.sh's).
#
#   sh -c "$SCRIPT" restore.sh RESTORE_RECIPE FETCH_BASE_RECIPE BRANCH BASE REMOTE IN
#   (in /workspace; REMOTE is empty on the bundle route; the Worker appends IN)
#
# Prints "restored", "base" (no save yet: the branch at its base) or "kept" (the workspace was still there:
# the container did not restart, so nothing is replaced).
set -eu
restore=$1 fetch=$2 branch=$3 base=$4 remote=$5 in=$6
trap 'rm -rf "$in"' EXIT
if [ -e .git ]; then echo kept; exit 0; fi
if [ -f "$in/base.bundle" ]; then
  from=$in/base.bundle
elif [ -n "$remote" ]; then
  from=$remote
else
  echo "the Worker holds no base bundle of this environment and it has no remote to clone" >&2
  exit 1
fi
sh -c "$fetch" fetch_base.sh "$from" "$base"
if [ -f "$in/save.tar" ]; then
  mkdir "$in/save"
  tar -xf "$in/save.tar" -C "$in/save"
  sh -c "$restore" restore.sh "$in/save/code.bundle" refs/palot/saved "$branch"
  for f in "$in"/save/sessions/*.json; do
    if [ -e "$f" ]; then opencode import "$f" >/dev/null; fi
  done
  what=restored
else
  git checkout --quiet -B "$branch" "$base"
  what=base
fi
git update-ref -d refs/palot/base
echo "$what"
