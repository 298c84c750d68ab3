# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: one JSON line per task result (name, host, status, result, times)."""

from __future__ import annotations

DOCUMENTATION = """
name: case_results
type: aggregate
short_description: one JSON line per task result, for the reliability suite
description:
  - Writes each task result with the task name and start/end times (UTC, epoch seconds) to the
    file named by the environment variable E(CASE_RESULTS_FILE).
requirements:
  - enabled in callbacks_enabled
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "case_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("CASE_RESULTS_FILE")
        self._started = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.time()  # pylint: disable=protected-access

    def _write(self, result, status):
        if not self._path:
            return
        task = result._task  # pylint: disable=protected-access
        record = {"task": task.get_name(), "host": result._host.get_name(), "status": status,  # pylint: disable=protected-access
                  "started": self._started.get(task._uuid), "ended": time.time(),  # pylint: disable=protected-access
                  "result": result._result}  # pylint: disable=protected-access
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")
