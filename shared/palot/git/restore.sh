# The restore recipe, the one copy: palot.git runs it on this machine, and the cloud backend sends it to
# palot-envd to run inside an environment.
#
# Puts a snapshot bundle (snapshot.sh with BUNDLE) into the repository: BRANCH at the snapshot's parent
# (the agent's head) and the snapshot's files exactly, left uncommitted; whatever the repository had
# checked out before is replaced. Files the snapshot does not have are removed.
#
#   sh -c "$SCRIPT" restore.sh BUNDLE REF BRANCH     (in the repository's top folder)
set -eu
git fetch --quiet --no-tags "$1" "+$2:$2"
git checkout --quiet --force -B "$3" "$2^"
git clean -fdq
git read-tree -u --reset "$2"
git reset --quiet
git update-ref -d "$2"
