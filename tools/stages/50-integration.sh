#!/usr/bin/env bash
# Integration targets (tests/integration/targets/*) against the ECS emulator, one JUnit test case
# per target. Each target runs in a fresh emulator (tools/with-emulator.sh), as a role in a
# one-play playbook on localhost, or through its runme.sh when it has one. Targets named
# setup_* are helpers for the others and are not run on their own. Extra emulator options for a
# target go, one per line, in its file `emulator_options`.
set -uo pipefail
source "$(dirname "$0")/common.sh"

targets_dir=$ROOT/tests/integration/targets
work=$(mktemp -d "${TMPDIR:-/tmp}/sshkeys-integration.XXXXXX")
trap 'rm -rf "$work"' EXIT
: >"$work/cases.tsv"
export ANSIBLE_ROLES_PATH=$targets_dir
export ANSIBLE_PYTHON_INTERPRETER=$VENV/bin/python
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_RETRY_FILES_ENABLED=0
export PATH=$VENV/bin:$PATH
# Only these names are wanted: selected targets as arguments, else every target.
selected=("$@")

status=0
for dir in "$targets_dir"/*/; do
  name=$(basename "$dir")
  case $name in setup_*) continue ;; esac
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " =~ \ $name\  ]]; then continue; fi
  log=$STAGE_RESULTS/integration-$name.log
  options=()
  if [ -f "$dir/emulator_options" ]; then
    mapfile -t options < <(grep -v '^\s*\(#\|$\)' "$dir/emulator_options")
  fi
  if [ -x "$dir/runme.sh" ]; then
    cmd=(bash -c "cd '$dir' && ./runme.sh")
  else
    playbook=$work/$name.yml
    printf -- '- hosts: localhost\n  connection: local\n  gather_facts: false\n  roles:\n    - %s\n' "$name" >"$playbook"
    cmd=("$VENV/bin/ansible-playbook" -i "localhost," "$playbook")
  fi
  echo "--- integration target $name"
  started=$(date +%s.%N)
  "$ROOT/tools/with-emulator.sh" "${options[@]}" -- "${cmd[@]}" >"$log" 2>&1
  code=$?
  ended=$(date +%s.%N)
  if [ "$code" -eq 0 ]; then
    grep -E '^localhost +:' "$log" | tail -1
  else
    status=1
    echo "FAILED ($code); the end of $log:"
    grep -E 'fatal:|FAILED|msg' "$log" | tail -15
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$code" "$started" "$ended" >>"$work/cases.tsv"
done

"$VENV/bin/python" - "$work/cases.tsv" "$STAGE_RESULTS/integration.xml" "$STAGE_RESULTS" <<'PY'
import sys
import xml.etree.ElementTree as ET

cases_file, out, results = sys.argv[1:4]
suite = ET.Element("testsuite", name="integration")
failures = 0
rows = [line.rstrip("\n").split("\t") for line in open(cases_file) if line.strip()]
for name, code, started, ended in rows:
    case = ET.SubElement(suite, "testcase", classname="integration", name=name,
                         time=f"{float(ended) - float(started):.2f}")
    if code != "0":
        failures += 1
        log = open(f"{results}/integration-{name}.log", errors="replace").read()
        failure = ET.SubElement(case, "failure", message=f"exit status {code}")
        failure.text = log[-4000:]
suite.set("tests", str(len(rows)))
suite.set("failures", str(failures))
ET.ElementTree(suite).write(out, encoding="utf-8", xml_declaration=True)
PY
exit $status
