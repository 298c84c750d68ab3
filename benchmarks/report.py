"""Renders the runner's results.json into RESULTS.md (the table of figures, goals and the machine)
and the PNG plots. Pure formatting: every number comes from results.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

# DESIGN.md Targets. The floor is one ansible.builtin.ping play on the same hosts, timed the same
# way: nothing that edits a host over SSH can beat it, so the SSH goals are ratios to it.
MODULE_FLOOR_GOAL = 1.1  # 200 keys into 5,000 lines, one host: the module at most 1.1x the floor
ROLE_FLOOR_GOAL = 1.2    # ... the role at most 1.2x
GOAL_KEYS, GOAL_LINES = 200, 5000
ALONE_GOAL = (100_000, 0.4)  # the module alone: 100,000 lines in under 0.4 s, linear
TASK_GOAL = 1.3          # one no-change ecs_keypair task: at most 1.3x an ansible.builtin.ping task
ROTATION_GOAL = 0.5      # rotation on 10 hosts: at most half the time of the three-task pattern
ROTATION_FLOOR_GOAL = 1.25  # ... and at most 1.25x the floor
EMULATOR_GOAL = (8, 500.0, 50.0)  # issue 3: at 8 clients at least 500 requests/s with p99 under 50 ms
API_OPERATIONS = (
    ("list", "list N key pairs (`ecs_keypair_info`, one pattern)", "DescribeKeyPairs", 50),
    ("delete", "delete N key pairs (`ecs_keypair` state=absent with names, one task)", "DeleteKeyPairs", 100),
    ("attach", "attach one key pair to N instances (`ecs_keypair_attach`)", "AttachKeyPair", 50),
)


def _median(values: list) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def _met(ok: Optional[bool], note: str = "") -> str:
    if ok is None:
        return "n/a"
    return ("**yes**" if ok else "**no**") + (f" {note}" if note else "")


def _plain_ticks(axis) -> None:
    """Log axes labelled 10, 100, 1,000 rather than 10^1, 10^2, 10^3."""
    from matplotlib.ticker import FuncFormatter  # benchmark venv only
    plain = FuncFormatter(lambda value, _pos: f"{value:,.0f}" if value >= 1 else f"{value:g}")
    axis.xaxis.set_major_formatter(plain)
    axis.yaxis.set_major_formatter(plain)


class Report:
    """Collects summary rows, detail sections and plots while walking the sections."""

    def __init__(self, results: dict, out: Path) -> None:
        self.results = results
        self.out = out
        self.rows: list = []
        self.details: list = []
        self.plots: list = []
        try:
            import matplotlib  # benchmark venv only
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            self.plt = plt
        except ImportError:
            self.plt = None

    def row(self, figure: str, ours: str, peer: str, ratio: str, goal: str, met: str) -> None:
        self.rows.append((figure, ours, peer, ratio, goal, met))

    def section(self, name: str) -> Optional[dict]:
        data = self.results["sections"].get(name)
        if data is None:
            return None
        if isinstance(data, dict) and "error" in data:
            self.row(f"{name}: failed", data["error"].splitlines()[-1][:200], "", "", "", "n/a")
            return None
        return data

    def save(self, figure, name: str, caption: str) -> None:
        figure.tight_layout()
        figure.savefig(self.out / name, dpi=110)
        self.plt.close(figure)
        self.plots.append((name, caption))

    # -- sections ---------------------------------------------------------------------------

    def tasks(self) -> None:
        data = self.section("tasks")
        if data is None:
            return
        med = data["median_s"]
        ratio = med["ecs_keypair"] / med["ping"]
        self.row("Per-task cost: a no-change `ecs_keypair` task vs `ansible.builtin.ping`", _s(med["ecs_keypair"]),
                 _s(med["ping"]), f"{ratio:.2f}x", f"at most {TASK_GOAL}x ping", _met(ratio <= TASK_GOAL))
        self.row("Per-task cost: a no-change `ecs_keypair` task vs `amazon.aws.ec2_key` on moto",
                 _s(med["ecs_keypair"]), _s(med["ec2_key"]), f"{med['ecs_keypair'] / med['ec2_key']:.2f}x",
                 f"none (reference: ec2_key is {med['ec2_key'] / med['ping']:.2f}x ping here)", "n/a")
        if "ecs_keypair_role" in med:
            self.row("Per-task cost: the same `ecs_keypair` task assuming a role first (STS AssumeRole, the "
                     "RamRoleArn case) vs `ansible.builtin.ping`", _s(med["ecs_keypair_role"]), _s(med["ping"]),
                     f"{med['ecs_keypair_role'] / med['ping']:.2f}x", "none (reference: one more request)", "n/a")
        kinds = [("ping", "`ansible.builtin.ping`"), ("ecs_keypair", "`sshkeys.ecs.ecs_keypair`"),
                 ("ecs_keypair_role", "`sshkeys.ecs.ecs_keypair`, role assumed"), ("ec2_key", "`amazon.aws.ec2_key` (moto)")]
        kinds = [(kind, label) for kind, label in kinds if kind in med]
        lines = [f"{data['rounds']} rounds of {len(kinds)} tasks in one playbook on localhost (ping, ecs_keypair on the "
                 "emulator, with an AccessKey and with a role assumed through the emulator's STS, ec2_key on "
                 "moto_server), after one warm-up round; every task unchanged.", "",
                 "| Task | Median | Ratio to ping | Samples (s) |", "|---|---|---|---|"]
        for kind, label in kinds:
            samples = ", ".join(f"{value:.2f}" for value in data["samples_s"][kind])
            lines.append(f"| {label} | {_s(med[kind])} | {med[kind] / med['ping']:.2f}x | {samples} |")
        self.details.append(("Per-task cost", lines))

    def api(self) -> None:
        data = self.section("api")
        if data is None:
            return
        lines = ["Requests by action, from the emulator's request log (the reads are how each module "
                 "decides what to change, so that a second run changes nothing). The module code runs in "
                 "process against the emulator, exactly as each module's `main()` calls it. Deleting is one "
                 "`ecs_keypair` task with `names` (the `delete_keypair.yml` playbook's own way, after one "
                 "`ecs_keypair_info` lookup): it reads which of the names exist and which instances hold "
                 "them, then deletes up to 100 names a call.", "",
                 "| N | Operation | Requests by action | Batched action calls | Minimum |", "|---|---|---|---|---|"]
        for entry in data:
            size = entry["n"]
            for key, label, action, per_call in API_OPERATIONS:
                one = entry[key]
                ratio = one["main"] / one["minimum"]
                self.row(f"API calls to {label.replace('N', str(size), 1)}",
                         f"{one['main']} {action} ({one['total']} requests in all)",
                         f"{one['minimum']} (the API minimum)", f"{ratio:.2f}x",
                         f"ceil(N/{per_call}) {action}", _met(one["main"] <= one["minimum"]))
                calls = ", ".join(f"{name} {count}" for name, count in sorted(one["calls"].items()))
                lines.append(f"| {size} | {key} | {calls} | {one['main']} | {one['minimum']} |")
        self.details.append(("API economy", lines))
        if self.plt is None:
            return
        figure, axis = self.plt.subplots(figsize=(6.4, 4.2))
        sizes = [entry["n"] for entry in data]
        for key, _label, action, per_call in API_OPERATIONS:
            line = axis.plot(sizes, [entry[key]["main"] for entry in data], marker="o", label=f"{key}: {action}")
            axis.plot(sizes, [math.ceil(size / per_call) for size in sizes], linestyle=":",
                      color=line[0].get_color(), label=f"{key}: minimum ceil(N/{per_call})")
        axis.set_xscale("log")
        axis.set_yscale("log")
        _plain_ticks(axis)
        axis.set_xlabel("N (key pairs or instances)")
        axis.set_ylabel("API calls of the batched action")
        axis.set_title("API calls against the minimum the API allows")
        axis.legend(fontsize=7)
        self.save(figure, "api_calls.png", "Calls of the batched action against the API minimum, by N.")

    def authorized_keys(self) -> None:
        data = self.section("authorized_keys")
        if data is None:
            return
        remote = {int(count): modes for count, modes in data["remote"].items()}
        whole = {count: {mode: _median([v[0] for v in values]) for mode, values in modes.items()}
                 for count, modes in remote.items()}
        tasks = {count: {mode: _median([v[1] for v in values]) for mode, values in modes.items()}
                 for count, modes in remote.items()}
        fit = self._loop_fit(whole)
        self._floor_rows(whole, data["lines"])
        for count in sorted(whole):
            self._peer_rows(count, whole[count], tasks[count], data["lines"], fit)
        lines = self._remote_table(remote, whole, tasks, data["lines"], fit)
        lines += self._alone_lines(data)
        self.details.append(("authorized_keys", lines))
        if self.plt is not None:
            self._alone_plot(data)
            self._modes_plot(whole, data["lines"], fit)

    @staticmethod
    def _loop_fit(whole: dict) -> Optional[tuple]:
        """(intercept, slope) of the loop: one module run per key, a straight line through its points."""
        loop = sorted((count, modes["posix-loop"]) for count, modes in whole.items() if "posix-loop" in modes)
        if len(loop) < 2:
            return None
        (x0, y0), (x1, y1) = loop[0], loop[-1]
        slope = (y1 - y0) / (x1 - x0)
        return y0 - slope * x0, slope

    def _floor_rows(self, whole: dict, lines: int) -> None:
        modes = whole.get(GOAL_KEYS, {})
        if "floor" not in modes:
            return
        floor = modes["floor"]
        targeted = lines == GOAL_LINES
        for mode, goal, label in (("module", MODULE_FLOOR_GOAL, "the `authorized_keys` module"),
                                  ("role", ROLE_FLOOR_GOAL, "the `authorized_keys` role"),
                                  ("posix-one", None, "`ansible.posix.authorized_key` (one task)")):
            if mode not in modes:
                continue
            ratio = modes[mode] / floor
            self.row(f"authorized_keys: {label}, {GOAL_KEYS} keys into {lines:,} lines, vs the floor (a ping play)",
                     _s(modes[mode]), _s(floor), f"{ratio:.2f}x",
                     f"at most {goal}x the floor" if goal and targeted else "none (reference)",
                     _met(ratio <= goal) if goal and targeted else "n/a")
        if "two-pings" in modes:
            # Every SSH play here opens the connection with a ping first: a second ping is the
            # least one more module can cost, so the module's own share is what it adds over that.
            self.row("authorized_keys: a second `ping` task after the floor's (the least any one more module costs)",
                     _s(modes["two-pings"]), _s(floor), f"{modes['two-pings'] / floor:.2f}x", "none (reference)", "n/a")
            if "module" in modes:
                self.row(f"authorized_keys: the module, {GOAL_KEYS} keys into {lines:,} lines, vs that second `ping` task "
                         "(the module's own cost)", _s(modes["module"]), _s(modes["two-pings"]),
                         f"{modes['module'] / modes['two-pings']:.2f}x", "none (breakdown)", "n/a")
        if "module" in modes and "role" in modes:
            self.row("authorized_keys: what the role adds to the module (argument validation task)",
                     _s(modes["role"]), _s(modes["module"]), f"{modes['role'] / modes['module']:.2f}x",
                     "none (cheap enough to keep, or say why not)", "n/a")

    def _peer_rows(self, count: int, modes: dict, tasks: dict, lines: int, fit: Optional[tuple]) -> None:
        if "role" not in modes:
            return
        role = modes["role"]
        if "posix-one" in modes:
            self.row(f"authorized_keys: role vs `ansible.posix.authorized_key` one task, {count} keys into "
                     f"{lines:,} lines", _s(role), _s(modes["posix-one"]),
                     f"{role / modes['posix-one']:.2f}x (task time alone {tasks['role'] / tasks['posix-one']:.2f}x)",
                     "none (the goals are set against the floor)", "n/a")
        if "posix-loop" in modes:
            peer, how = modes["posix-loop"], "measured"
        elif fit is not None:
            peer, how = fit[0] + fit[1] * count, "extrapolated"
        else:
            return
        self.row(f"authorized_keys: role vs `ansible.posix.authorized_key` looped, {count} keys into {lines:,} lines",
                 _s(role), f"{_s(peer)} ({how})", f"{role / peer:.3f}x (role {peer / role:.0f}x faster)",
                 "none (reference)", "n/a")

    @staticmethod
    def _remote_table(remote: dict, whole: dict, tasks: dict, lines: int, fit: Optional[tuple]) -> list:
        out = [f"Whole `ansible-playbook` runs adding N keys to a file of {lines:,} lines on one container "
               "over SSH (pipelining on); task time from `ansible.posix.profile_tasks`, after a warm-up ping. "
               "The floor is the warm-up ping alone (one run, one SSH connection, one module). Medians; every "
               "run checked to leave the right number of keys.", "",
               "| Keys | Mode | Runs | Whole run (median) | Ratio to the floor | Task time (median) |",
               "|---|---|---|---|---|---|"]
        floor = whole.get(GOAL_KEYS, {}).get("floor")
        for count in sorted(remote):
            for mode, values in remote[count].items():
                to_floor = f"{whole[count][mode] / floor:.2f}x" if floor else "n/a"
                out.append(f"| {count} | {mode} | {len(values)} | {_s(whole[count][mode])} | {to_floor} | "
                           f"{_s(tasks[count][mode])} |")
        if fit is not None:
            out += ["", f"The loop, fitted through its measured points: {fit[0]:.1f} s + {fit[1]:.2f} s per key "
                    "(each key is one module run that reads the whole file)."]
        return out

    @staticmethod
    def _alone_lines(data: dict) -> list:
        alone = [tuple(point) + (None,) * (3 - len(point)) for point in data["module_alone"]]
        out = ["", f"The module alone (in process, no Ansible: read, plan, locked atomic write) adding "
               f"{data['module_keys']} keys:", "", "| Lines in the file | Median time | Median CPU time |",
               "|---|---|---|"]
        out += [f"| {size:,} | {seconds * 1000:.1f} ms | " + (f"{cpu * 1000:.1f} ms |" if cpu is not None else "n/a |")
                for size, seconds, cpu in alone]
        if len(alone) >= 2:
            (small, t_small, _cpu_small), (big, t_big, _cpu_big) = alone[0], alone[-1]
            out += ["", f"{(t_big - t_small) / (big - small) * 1e6:.1f} microseconds per extra line between "
                    f"{small:,} and {big:,} lines."]
        return out

    def alone_row(self) -> None:
        data = self.section("authorized_keys")
        if data is None:
            return
        size, goal = ALONE_GOAL
        point = next((p for p in data["module_alone"] if p[0] == size), None)
        if point is not None:
            cpu = point[2] if len(point) > 2 else None
            self.row(f"authorized_keys: the module alone, 200 keys into {size:,} lines (in process)",
                     _s(point[1]) + (f" (CPU {_s(cpu)})" if cpu is not None else ""), "", "", f"under {goal} s",
                     _met(point[1] < goal))

    def _alone_plot(self, data: dict) -> None:
        alone = data["module_alone"]
        figure, axis = self.plt.subplots(figsize=(6.4, 4.2))
        axis.plot([point[0] for point in alone], [point[1] for point in alone], marker="o",
                  label=f"module alone, adding {data['module_keys']} keys")
        axis.set_xscale("log")
        axis.set_yscale("log")
        _plain_ticks(axis)
        axis.set_xlabel("lines in authorized_keys")
        axis.set_ylabel("seconds (median)")
        axis.set_title("authorized_keys module: time against file size")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
        self.save(figure, "authorized_keys_module.png", "The module's own work against the size of the file.")

    def _modes_plot(self, whole: dict, lines: int, fit: Optional[tuple]) -> None:
        figure, axis = self.plt.subplots(figsize=(6.4, 4.2))
        for mode in ("role", "posix-one", "posix-loop"):
            points = sorted((count, modes[mode]) for count, modes in whole.items() if mode in modes)
            if points:
                line = axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{mode} (measured)")
                if mode == "posix-loop" and fit is not None:
                    xs = [points[-1][0], max(whole)]
                    axis.plot(xs, [fit[0] + fit[1] * x for x in xs], linestyle="--", color=line[0].get_color(),
                              label="posix-loop (extrapolated)")
        floor = whole.get(GOAL_KEYS, {}).get("floor")
        if floor:
            axis.axhline(floor, linestyle=":", color="grey", label="floor (a ping play)")
        axis.set_xscale("log")
        axis.set_yscale("log")
        _plain_ticks(axis)
        axis.set_xlabel(f"keys added to a file of {lines:,} lines")
        axis.set_ylabel("whole playbook run, seconds (median)")
        axis.set_title("authorized_keys: the role against ansible.posix and the floor")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
        self.save(figure, "authorized_keys_modes.png", "Whole playbook runs by number of keys and mode.")

    def rotation(self) -> None:
        data = self.section("rotation")
        if data is None:
            return
        ours, peer = _median(data["ours"]), _median(data["peer"])
        self.row(f"Rotation of one key on {data['hosts']} hosts with proof of login vs the three-task "
                 "ansible.posix pattern", _s(ours), _s(peer), f"{ours / peer:.2f}x", f"at most {ROTATION_GOAL}x",
                 _met(ours / peer <= ROTATION_GOAL))
        lines = [f"Whole playbook runs on {data['hosts']} containers, forks 10, pipelining on, alternating; each run "
                 "checked to have rotated every host.", "", "| Way | Median | Runs (s) |", "|---|---|---|",
                 f"| `sshkeys.ecs.authorized_key_rotate` (one task) | {_s(ours)} | "
                 + ", ".join(f"{t:.2f}" for t in data["ours"]) + " |",
                 "| ansible.posix add, `ssh` login check, ansible.posix remove | "
                 f"{_s(peer)} | " + ", ".join(f"{t:.2f}" for t in data["peer"]) + " |"]
        if data.get("floor"):
            floor = _median(data["floor"])
            self.row(f"Rotation of one key on {data['hosts']} hosts with proof of login vs the floor (a ping play)",
                     _s(ours), _s(floor), f"{ours / floor:.2f}x", f"at most {ROTATION_FLOOR_GOAL}x the floor",
                     _met(ours / floor <= ROTATION_FLOOR_GOAL))
            lines.append(f"| the floor: one `ansible.builtin.ping` play | {_s(floor)} | "
                         + ", ".join(f"{t:.2f}" for t in data["floor"]) + " |")
        lines += self._scale_lines(data, ours)
        self.details.append(("Rotation", lines))

    def _scale_lines(self, data: dict, ours: float) -> list:
        scale = data.get("scale")
        if not scale or not scale.get("ours"):
            return []
        big = _median(scale["ours"])
        floor = _median(scale["floor"]) if scale.get("floor") else None
        per_small, per_big = ours / data["hosts"], big / scale["hosts"]
        self.row(f"Rotation on {scale['hosts']} hosts in serial batches of {scale['serial']}: cost per host against "
                 f"{data['hosts']} hosts", f"{per_big:.2f} s a host", f"{per_small:.2f} s a host",
                 f"{per_big / per_small:.2f}x", "flat (about 1x)", "n/a")
        return ["", f"At scale: {scale['hosts']} hosts with `serial: {scale['serial']}`: {_s(big)} (runs: "
                + ", ".join(f"{t:.2f}" for t in scale["ours"]) + ")"
                + (f"; the floor on the same hosts and batches {_s(floor)} ({big / floor:.2f}x)" if floor else "")
                + f". Per host: {per_big:.2f} s against {per_small:.2f} s on {data['hosts']} hosts."]

    def payload(self) -> None:
        data = self.section("payload")
        if data is None:
            return
        lines = ["What each host module sends to a managed host for one run (the AnsiballZ payload ansible-core "
                 "builds, ZIP_DEFLATED as by default) and what importing it costs there (a fresh Python, "
                 "ansible's module_utils.basic imported first, so the time is the collection's own share; "
                 "median of 7).", "", "| Module | Payload | Collection files | Import time |", "|---|---|---|---|"]
        for name, one in data.items():
            lines.append(f"| `{name}` | {one['payload_bytes']:,} bytes | {one['collection_files']} "
                         f"({', '.join(m for m in one['collection_modules'] if m != '__init__')}) | "
                         f"{one['import_s'] * 1000:.1f} ms |")
            self.row(f"Payload of `{name}` (sent to the host on every run)", f"{one['payload_bytes']:,} bytes", "", "",
                     "none (reference)", "n/a")
        self.details.append(("Host module payload", lines))

    def emulator(self) -> None:
        data = self.section("emulator")
        if data is None:
            return
        goal_clients, goal_rps, goal_p99 = EMULATOR_GOAL
        lines = [f"Signed (v1) DescribeKeyPairs, PageSize 50, {data['keypairs']} key pairs, {data['seconds']:g} s per "
                 "level, keep-alive connections; the clients run on the same CPUs as the server.", "",
                 "| Clients | Requests | Errors | Requests/s | p50 | p99 |", "|---|---|---|---|---|---|"]
        for level in data["levels"]:
            text = f"{level['rps']:.0f} req/s, p50 {level['p50_ms']:.1f} ms, p99 {level['p99_ms']:.1f} ms"
            if level["clients"] == goal_clients:
                ok = level["rps"] >= goal_rps and level["p99_ms"] < goal_p99
                self.row(f"Emulator at {goal_clients} clients", text, "", "",
                         f"at least {goal_rps:.0f} req/s with p99 under {goal_p99:.0f} ms", _met(ok))
            else:
                plural = "client" if level["clients"] == 1 else "clients"
                self.row(f"Emulator at {level['clients']} {plural}", text, "", "", "none", "n/a")
            lines.append(f"| {level['clients']} | {level['requests']} | {level['errors']} | {level['rps']:.0f} | "
                         f"{level['p50_ms']:.1f} ms | {level['p99_ms']:.1f} ms |")
        self.details.append(("Emulator", lines))
        if self.plt is None:
            return
        clients = [level["clients"] for level in data["levels"]]
        figure, (left, right) = self.plt.subplots(1, 2, figsize=(9, 3.8))
        left.plot(clients, [level["rps"] for level in data["levels"]], marker="o")
        left.axhline(goal_rps, linestyle=":", color="grey", label=f"goal at {goal_clients} clients")
        left.set_xscale("log", base=2)
        left.set_ylim(bottom=0)
        left.set_xlabel("concurrent clients")
        left.set_ylabel("requests/s")
        left.set_title("Throughput")
        left.legend()
        right.plot(clients, [level["p50_ms"] for level in data["levels"]], marker="o", label="p50")
        right.plot(clients, [level["p99_ms"] for level in data["levels"]], marker="o", label="p99")
        right.axhline(goal_p99, linestyle=":", color="grey", label="p99 goal")
        right.set_xscale("log", base=2)
        right.set_ylim(bottom=0)
        for axis in (left, right):
            axis.set_xticks(clients, [str(c) for c in clients])
        right.set_xlabel("concurrent clients")
        right.set_ylabel("latency, ms")
        right.set_title("Latency")
        right.legend()
        self.save(figure, "emulator_load.png", "Emulator throughput and latency against concurrent clients.")

    # -- the document ------------------------------------------------------------------------

    def summary(self) -> str:
        lines = ["| Figure | sshkeys.ecs (median) | Peer (median) | Ratio (ours / peer) | Goal | Met |",
                 "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def machine(self) -> list:
        box = self.results["machine"]
        peers = ", ".join(f"{name} {version}" for name, version in box["peers"].items())
        seconds = sum(self.results.get("seconds", {}).values())
        return [f"- Date: started {self.results['started']}; the run took {seconds / 60:.1f} minutes"
                + (" (`--quick` smoke run: fewer rounds and sizes)" if self.results.get("quick") else ""),
                f"- CPU: {box['cpus']} x {box['cpu_model']}; memory {box['memory']}; {box['system']}",
                f"- Python {box['python']} (Ansible and the modules; {box['bench_python']} for the runner), "
                f"{box['ansible_core']}",
                f"- Peers: {peers}",
                "- Load average (1, 5, 15 min) at the start: "
                + ", ".join(f"{x:.1f}" for x in box["load_before"])
                + ("; at the end: " + ", ".join(f"{x:.1f}" for x in box["load_after"]) if "load_after" in box else "")
                + ("; 1-minute load as each section started: "
                   + ", ".join(f"{name} {load:.1f}" for name, load in self.results["load"].items())
                   if self.results.get("load") else ""),
                self._load_note(box)] + self._single_runs()

    def _load_note(self, box: dict) -> str:
        """How far to trust the absolute times, judged by the load as each section started.

        The load at the end is left out: the rotation section's own containers and forks raise it.
        """
        loads = [box["load_before"][0]] + list((self.results.get("load") or {}).values())
        side_by_side = ("The ratios compare runs taken side by side, interleaved, in the same minutes, "
                        "and are the figures to read.")
        if max(loads) > box["cpus"]:
            return (f"- The machine was busy: other jobs ran on the same {box['cpus']} cores during this run "
                    f"(1-minute load up to {max(loads):.1f}), so absolute times are noisy and higher than on an "
                    f"idle machine. {side_by_side}")
        return (f"- The machine was quiet: the 1-minute load was at most {max(loads):.1f} on {box['cpus']} cores "
                f"as each section started, so the absolute times are those of an idle machine. {side_by_side}")

    def _single_runs(self) -> list:
        """A warning when a crowded machine left the SSH sections with one run per mode."""
        sections = self.results["sections"]
        rotation = sections.get("rotation") or {}
        remote = (sections.get("authorized_keys") or {}).get("remote", {})
        single = rotation.get("rounds") == 1 or any(
            len(values) == 1 for modes in remote.values() for mode, values in modes.items() if mode != "posix-loop")
        if not single:
            return []
        return ["- In this run the SSH sections (authorized_keys, rotation) had time for one run per mode "
                "within their time budgets: those figures are single samples, not medians, and at this load "
                "even their ratios move a lot from run to run (compare the one-task mode at 200 and at "
                "1,000 keys below). Run `make bench` on a quieter machine for steadier figures."]

    def document(self) -> str:
        parts = ["# Benchmark results", "",
                 "Written by `make bench` (`benchmarks/run.py`; how to run and read it: `benchmarks/README.md`). "
                 "Times are medians of several runs taken side by side in one run on one machine; a ratio below "
                 "1 means this collection takes less than the peer. Goals are those of the design notes' "
                 "\"Targets\" (the emulator's from its own issue). Nothing here is a test.", "",
                 "## Summary", "", self.summary(), "", "## Machine", "", *self.machine(), ""]
        for title, lines in self.details:
            parts += [f"## {title}", "", *lines, ""]
        if self.plots:
            parts += ["## Plots", ""]
            for name, caption in self.plots:
                parts += [f"![{caption}]({name})", "", caption, ""]
        return "\n".join(parts)


def _cloud_assistant(report: "Report") -> None:
    data = report.section("cloud_assistant")
    if data is None:
        return
    ssh, ca = _median(data["ssh"]), _median(data["cloud_assistant"])
    calls = data["calls"]
    totals = [sum(run.values()) for run in calls]
    report.row("One authorized_keys task over Cloud Assistant vs over SSH (emulator, one instance)", _s(ca), _s(ssh),
               f"{ca / ssh:.2f}x", "measured, no goal", "n/a")
    lines = ["One play with one `sshkeys.ecs.authorized_keys` task adding a new key, pipelining on, on one podman "
             "instance of the emulator; runs alternate. The agent is `podman exec` here: a real region adds its "
             "own API and agent latency.", "", "| Way | Median | Runs (s) | API calls per run |", "|---|---|---|---|",
             f"| SSH | {_s(ssh)} | " + ", ".join(f"{t:.2f}" for t in data["ssh"]) + " | none |",
             f"| Cloud Assistant | {_s(ca)} | " + ", ".join(f"{t:.2f}" for t in data["cloud_assistant"]) + " | "
             + "; ".join(", ".join(f"{name} {count}" for name, count in sorted(run.items())) for run in calls[:1])
             + f" (total {min(totals)} to {max(totals)}) |"]
    report.details.append(("Cloud Assistant", lines))


def write(results: dict, out: Path) -> str:
    """Write RESULTS.md and the plots into out; return the summary table."""
    report = Report(results, out)
    for name in ("tasks", "api", "authorized_keys", "alone_row", "rotation", "payload", "emulator"):
        getattr(report, name)()
    _cloud_assistant(report)
    (out / "RESULTS.md").write_text(report.document(), encoding="utf-8")
    return report.summary()
