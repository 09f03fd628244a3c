# The checkpoint recipe, the one copy: palot.git runs it on this machine, and the cloud backend sends it to
# palot-envd to run inside an environment.
#
# Commits all the work in the work tree (tracked changes, untracked files; ignored ones excepted). Hooks
# are skipped: a checkpoint saves work, it is not a review gate. Prints the new commit's sha, or nothing
# when there was nothing to commit.
#
#   sh -c "$SCRIPT" checkpoint.sh     (in the work tree; the message on stdin)
set -eu
git add --all
staged=0
git diff --cached --quiet --no-ext-diff || staged=$?
[ "$staged" -eq 0 ] && exit 0
[ "$staged" -eq 1 ] || exit "$staged"
# A fixed author and no signing, as for every commit Palot makes (snapshot.sh, checkpoint.sh).
git -c user.name=Palot -c user.email=palot@localhost -c commit.gpgSign=false commit --quiet --no-verify -F -
git rev-parse HEAD
