#!/bin/sh
# One task through a command-line agent, with the team's memories:
#   1. recall the memories for the task into the agent's prompt,
#   2. run the agent on the task,
#   3. ask the agent for memory items about its attempt and store them.
# Usage: AGENT="<agent command taking a prompt as last argument>" agent_loop.sh "<task>"
set -eu
task=${1:?usage: AGENT=... agent_loop.sh "<task>"}
agent=${AGENT:?set AGENT to the agent command, e.g. AGENT="mini -t"}

memories=$(mtlgit recall --prompt "$task" || true)
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT

if $agent "$memories

# Task
$task" >"$answer"; then
    outcome=success
else
    outcome=failure
fi
cat "$answer"

# The extraction: the agent reads the instructions and its own attempt, and answers with JSON items.
$agent "$(mtlgit prompt extract --outcome "$outcome")

# Your attempt
$(tail -c 20000 "$answer")" | mtlgit add --items - --json || echo "agent_loop: some memory items were rejected (see above)" >&2
