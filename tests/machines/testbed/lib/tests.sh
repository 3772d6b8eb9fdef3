# shellcheck shell=bash
# Which tests of debian/tests/control run in the container.
#
# The container is not a machine (no own kernel, cgroup v1 hybrid by
# default): isolation-machine tests belong to the VM runner. autopkgtest 5.28's
# null runner (bookworm) claims isolation-machine for itself while 5.49's
# (trixie) claims nothing, so the testbed selects the tests itself to behave
# the same on both.

# Print "NAME RESTRICTION,RESTRICTION…" for every test, named as autopkgtest
# names them (Tests: names; Test-Command: stanzas are command1, command2, …).
control_tests() {
	awk '
		function flush() {
			if (names != "") {
				n = split(names, list, /[ ,]+/)
				for (i = 1; i <= n; i++) if (list[i] != "") print list[i], (restr == "" ? "-" : restr)
			} else if (command) {
				counter++
				print "command" counter, (restr == "" ? "-" : restr)
			}
			names = ""; restr = ""; command = 0; field = ""
		}
		/^[[:space:]]*#/ { next }
		/^[[:space:]]*$/ { flush(); next }
		/^[^[:space:]]/ {
			field = tolower(substr($0, 1, index($0, ":") - 1))
			value = substr($0, index($0, ":") + 1)
			if (field == "test-command") command = 1
		}
		/^[[:space:]]/ { value = $0 }
		field == "tests" { names = names " " value }
		field == "restrictions" { gsub(/[ \t]+/, ",", value); restr = restr "," value }
		END { flush() }' "$1" | sed -E 's/ ,+/ /; s/,+/,/g; s/,$//'
}

# Tests to run: the --test names if given, else every test without
# isolation-machine (unless the caller ignores that restriction too).
# Prints names, one a line; the excluded ones go to the file $2.
select_tests() {
	local control=$1 excluded=$2 ignore=$3 name restr
	: >"$excluded"
	while read -r name restr; do
		case ",$restr," in
		*,isolation-machine,*)
			case ",$ignore," in
			*,isolation-machine,*) ;;
			*) printf '%s\n' "$name" >>"$excluded"; continue ;;
			esac
			;;
		esac
		printf '%s\n' "$name"
	done < <(control_tests "$control")
}
