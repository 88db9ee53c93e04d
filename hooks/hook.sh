#!/bin/sh
# mtlgit-hook v3 -- written by `mtlgit hooks install`; `mtlgit hooks uninstall` removes it and restores
# any hook that was here before (kept beside it as <hook>.legacy, and run first).
HOOK_TYPE='@HOOK_TYPE@'
INSTALL_PYTHON='@INSTALL_PYTHON@'
REFRESH='@REFRESH@'

here=${0%/*}
status=0
if [ -x "$here/$HOOK_TYPE.legacy" ]; then
    "$here/$HOOK_TYPE.legacy" "$@" || status=$?
fi
[ -n "$MTLGIT_SKIP_HOOKS" ] && exit $status
# Most commits stage no Markdown at all: then there is nothing to lint, and no reason to start Python. The
# test is the one mtlgit applies (a name ending in .md in any case, a file turned into one counts too).
if [ "$HOOK_TYPE" = pre-commit ] && git diff --cached --quiet --diff-filter=ACMRTU -- ':(icase)*.md' 2>/dev/null; then
    exit $status
fi

if [ -x "$INSTALL_PYTHON" ]; then
    set -- "$INSTALL_PYTHON" -m mtlgit hook-run "$HOOK_TYPE" "$@"
elif command -v mtlgit >/dev/null 2>&1; then
    set -- mtlgit hook-run "$HOOK_TYPE" "$@"
else
    echo "mtlgit $HOOK_TYPE hook: mtlgit is gone ($INSTALL_PYTHON not found, no mtlgit on PATH): reinstall it and run 'mtlgit hooks install', or 'git config core.hooksPath /dev/null' to stop git hooks; skipped" >&2
    exit $status
fi

if [ "$REFRESH" = 1 ]; then
    # Refresh the index in the background, detached: the git command never waits for it, never fails by it.
    ( "$@" </dev/null >/dev/null 2>&1 & )
else
    "$@" || status=1
fi
exit $status
