# bash completion for peernet-host. The commands and their options are read
# from the program's own help (`--help`, `help COMMAND`), so they are always
# the installed version's.
_peernet_host() {
  local cur prev cmd w i
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  case $prev in
    --data-dir|--handlers) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --listen|--addr|--timeout|--label) return ;;
  esac
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --data-dir) ((i++)) ;;
      -*) ;;
      *) cmd=$w; break ;;
    esac
  done
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "--data-dir --json --help --version" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" --help 2>/dev/null |
        sed -n '/^commands:/,/^$/{s/^  \([a-z]*\) .*/\1/p}') help" -- "$cur"))
    fi
    return
  fi
  case $cmd in
    trust)
      if ((COMP_CWORD == i + 1)); then
        COMPREPLY=($(compgen -W "add rm ls" -- "$cur")); return
      fi ;;
    run|check)
      if [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -f -X '!*.lua' -- "$cur") $(compgen -d -- "$cur")); return
      fi ;;
    help)
      COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" --help 2>/dev/null |
        sed -n '/^commands:/,/^$/{s/^  \([a-z]*\) .*/\1/p}')" -- "$cur")); return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$({ "${COMP_WORDS[0]}" help "$cmd" 2>/dev/null |
      grep -o -- '--[a-z-]*'; echo --help; } | sort -u)" -- "$cur"))
  fi
}
complete -F _peernet_host peernet-host
