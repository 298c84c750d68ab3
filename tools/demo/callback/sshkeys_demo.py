# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stdout callback of `make demo`: one heading per play, then only what a person wants to read.

Shown: the lines of every task whose name starts with "Summary" (the workflow playbooks and the
story end their plays with one), what each rotation did (a playbook without a summary task),
module warnings, which hosts changed, and for failures the host, the task and the module's
message. Never shown: raw results (JSON), diffs, or anything else a task returns.
Every result is also appended as one line (host, task, status, message) to $SSHKEYS_DEMO_LOG
when that is set, for a look after a failure.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: sshkeys_demo
type: stdout
short_description: Readable step summaries for make demo
description:
  - Prints a heading per play, the messages of tasks named Summary, warnings, changed hosts and
    failure messages; nothing else.
"""

import os
import time

from ansible.plugins.callback import CallbackBase

INDENT = "    "


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "sshkeys_demo"

    def __init__(self) -> None:
        super().__init__()
        self.step = 0
        self.changed: list = []
        self.failed = False
        self.started = 0.0
        self.play_hosts = 1
        self.play_id = None
        self.log_path = os.environ.get("SSHKEYS_DEMO_LOG")

    # -- helpers ---------------------------------------------------------------------------

    def out(self, text: str = "") -> None:
        self._display.display(text)

    def log(self, result, status: str, message: str = "") -> None:
        if not self.log_path:
            return
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{result._host.get_name()}\t{result._task.get_name()}\t{status}\t{message}\n")

    @staticmethod
    def lines(msg) -> list:
        # A list item is one line (folded YAML may leave a line break inside it); a string may
        # hold several lines.
        if isinstance(msg, (list, tuple)):
            items = [" ".join(str(item).split()) for item in msg]
        else:
            items = str(msg).splitlines()
        return [item.strip() for item in items if item.strip()]

    @staticmethod
    def failure_message(result: dict) -> str:
        """The module's own words; for a loop, those of the items that failed."""
        parts = []
        for item in result.get("results") or []:
            if isinstance(item, dict) and item.get("failed"):
                label = item.get("_ansible_item_label", item.get("item", ""))
                parts.append(f"{label}: {item.get('msg', 'failed')}")
        if parts:
            return "; ".join(str(p) for p in parts)
        return str(result.get("msg") or result.get("stderr") or "failed")

    @staticmethod
    def rotation(res: dict) -> str:
        user = res.get("user", "?")
        if not res.get("changed"):
            return f"{user}: nothing to rotate, the new key is in place already"
        proof = res.get("verification") or {}
        removed = ", ".join(res.get("removed") or [])
        text = f"{user}: {removed} replaced by {res.get('added')}"
        if proof.get("new_key_login"):
            text += "; new key login OK"
        if proof.get("old_key_rejected"):
            text += ", old key refused"
        return text + (" (check mode)" if res.get("check_mode") else "")

    def prefix(self, result) -> str:
        host = result._host.get_name()
        return f"{host}: " if self.play_hosts > 1 or host not in ("localhost", "127.0.0.1") else ""

    def end_play(self) -> None:
        if not self.step:
            return
        took = time.monotonic() - self.started
        changed = sorted(set(self.changed))
        what = f"changed: {', '.join(changed)}" if changed else "no change"
        self.out(f"{INDENT}-> {what} ({took:.1f} s)")

    # -- events ----------------------------------------------------------------------------

    def v2_playbook_on_play_start(self, play) -> None:
        # A play with `serial` starts once per batch: one heading, one footer.
        if play._uuid == self.play_id:
            return
        self.play_id = play._uuid
        self.end_play()
        self.step += 1
        self.changed = []
        self.started = time.monotonic()
        try:
            hosts = play.get_variable_manager()._inventory.get_hosts(play.hosts)
            self.play_hosts = len(hosts)
        except Exception:  # the count only decides whether lines name their host
            self.play_hosts = 2
        self.out("")
        self.out(f"[{self.step:2d}] {play.get_name().strip()}")

    def v2_runner_on_ok(self, result) -> None:
        res = result._result
        if res.get("changed"):
            self.changed.append(result._host.get_name())
        for warning in res.get("warnings") or []:
            self.out(f"{INDENT}{self.prefix(result)}warning: {warning}")
        if result._task.get_name().strip().startswith("Summary") and "msg" in res:
            for line in self.lines(res["msg"]):
                self.out(f"{INDENT}{self.prefix(result)}{line}")
        elif result._task.action.endswith("authorized_key_rotate"):
            self.out(f"{INDENT}{self.prefix(result)}{self.rotation(res)}")
        self.log(result, "changed" if res.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        message = self.failure_message(result._result)
        self.log(result, "ignored" if ignore_errors else "failed", message)
        if ignore_errors:
            return
        self.failed = True
        self.out(f"{INDENT}FAILED {self.prefix(result) or 'localhost: '}{result._task.get_name().strip()}: {message}")

    def v2_runner_on_unreachable(self, result) -> None:
        self.failed = True
        message = result._result.get("msg", "unreachable")
        self.log(result, "unreachable", message)
        self.out(f"{INDENT}UNREACHABLE {result._host.get_name()}: {message}")

    def v2_runner_on_skipped(self, result) -> None:
        self.log(result, "skipped")

    def v2_playbook_on_stats(self, stats) -> None:
        self.end_play()
        hosts = sorted(stats.processed.keys())
        changed = sum(stats.summarize(h)["changed"] for h in hosts)
        failed = sum(stats.summarize(h)["failures"] + stats.summarize(h)["unreachable"] for h in hosts)
        self.out("")
        verdict = "FAILED" if failed else "done"
        self.out(f"{verdict}: {self.step} steps, {changed} changes, {failed} failures on {len(hosts)} hosts")
