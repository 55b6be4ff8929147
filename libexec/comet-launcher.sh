#!/bin/sh
# The agent starts this small shell once, before anything trips: forking a shell this size costs a fraction
# of what a fork of the large Node process costs, and that difference is the fencing latency.
#
# Requests arrive on stdin, one field per line (no field may contain a newline; the agent guarantees it):
#   P <index> <line count> <lines...>      cache procedure <index>: its shell command, over <line count> lines
#   R <index> <run id> <output file> <env count> <NAME=value lines...>
#                                          run procedure <index> with /bin/sh -c and those variables
# Replies on stdout, one line each, written by single processes so that lines never interleave:
#   S <run id> <pid>                       the procedure's subshell has started
#   E <run id> <exit status>               it has ended (128+n: killed by signal n)
# End of stdin ends the launcher, never the procedures it started: fencing outlives the agent.
umask 077
while IFS= read -r verb; do
  case $verb in
    P)
      IFS= read -r index; IFS= read -r count
      text=; n=0
      while [ "$n" -lt "$count" ]; do
        IFS= read -r line
        text="$text$line
"
        n=$((n + 1))
      done
      eval "procedure_$index=\$text"
      ;;
    R)
      IFS= read -r index; IFS= read -r run; IFS= read -r output; IFS= read -r count
      eval "text=\$procedure_$index"
      n=0
      while [ "$n" -lt "$count" ]; do
        IFS= read -r "assignment_$n"
        n=$((n + 1))
      done
      (
        n=0
        while [ "$n" -lt "$count" ]; do
          eval "export \"\$assignment_$n\""
          n=$((n + 1))
        done
        /bin/sh -c "$text" </dev/null >"$output" 2>&1
        echo "E $run $?"
      ) &
      echo "S $run $!"
      ;;
  esac
done
