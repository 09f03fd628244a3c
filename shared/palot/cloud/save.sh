# Saves a cloud environment's work, for the Worker to keep in its SAVES bucket (images/cloudflare/src/durable.ts):
# one tar of the snapshot bundle (palot.git's snapshot.sh: the branch's commits past BASE and the uncommitted
# and untracked files) and an export of every OpenCode session of the workspace.
#
#   sh -c "$SCRIPT" save.sh SNAPSHOT_RECIPE BASE OUT     (in /workspace; the Worker appends OUT)
#
# Exit 3: nothing to save yet (the workspace is not in place).
set -eu
snapshot=$1 base=$2 out=$3
[ -d .git ] || exit 3
mkdir -p /run/palot
tmp=$(mktemp -d /run/palot/save-XXXXXX); trap 'rm -rf "$tmp"' EXIT
echo "palot: saved work (uncommitted)" | sh -c "$snapshot" snapshot.sh refs/palot/saved "$tmp/code.bundle" "$base" >"$tmp/heads"
mkdir "$tmp/sessions"
opencode session list --format json >"$tmp/list.json"
for id in $(python3 -c 'import json, sys; t = sys.stdin.read().strip(); print("\n".join(s["id"] for s in (json.loads(t) if t else [])))' <"$tmp/list.json"); do
  # Into a file, not a pipe: OpenCode 1.18 exits before a piped stdout drains.
  opencode export "$id" >"$tmp/sessions/$id.json"
done
tar -cf "$out.new" -C "$tmp" code.bundle heads sessions
mv "$out.new" "$out"
