# The snapshot recipe, the one copy: palot.git runs it on this machine, and the cloud backend sends it to
# palot-envd to run inside an environment.
#
# Records everything in the work tree (its branch's commits, uncommitted edits, untracked and deleted
# files; ignored files excepted) as a commit whose parent is HEAD and whose tree is the working tree, made
# with a throwaway index: the branch, the index and the files stay untouched.
#
#   sh -c "$SCRIPT" snapshot.sh REF [BUNDLE BASE]     (in the work tree's top folder; message on stdin)
#
# The commit goes to REF. With BUNDLE, REF is bundled there (only what BASE lacks) and deleted again: the
# bundle carries the branch's commits and the uncommitted work in one ref. Prints "HEAD SNAPSHOT" shas.
set -eu
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export GIT_INDEX_FILE="$tmp/index"
git read-tree HEAD
# Fast zlib: these objects live only until the move is done (a move is on the clock).
git -c core.looseCompression=1 add --all
tree=$(git write-tree)
unset GIT_INDEX_FILE
head=$(git rev-parse --verify --quiet 'HEAD^{commit}')
# A fixed author and no signing, as for every commit Palot makes (snapshot.sh, checkpoint.sh).
commit=$(git -c user.name=Palot -c user.email=palot@localhost -c commit.gpgSign=false \
  commit-tree "$tree" -p "$head" -F -)
git update-ref "$1" "$commit"
if [ $# -ge 3 ]; then
  # Uncompressed: the bundle is read once, and zlib is most of the time for big changes.
  git -c pack.compression=0 bundle create --quiet "$2" "$1" "^$3"
  git update-ref -d "$1"
fi
echo "$head $commit"
