"""Writes the variables table of a role's README.md from its meta/argument_specs.yml.

    python tools/role_readme.py roles/authorized_keys          # rewrite the table
    python tools/role_readme.py --check roles/authorized_keys  # exit 1 when it is out of date

The table sits between the markers <!-- argument_specs start --> and <!-- argument_specs end -->.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

START, END = "<!-- argument_specs start -->", "<!-- argument_specs end -->"


def plain(text: str) -> str:
    """Ansible doc markup (C(), V(), O(), I()) as Markdown, on one line."""
    text = re.sub(r"\b[CVO]\(([^)]*)\)", r"`\1`", text)
    text = re.sub(r"\bI\(([^)]*)\)", r"*\1*", text)
    return text.replace("|", "\\|").replace("\n", " ")


def table(role: Path) -> str:
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
    rows = ["| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for name, option in spec["options"].items():
        kind = option.get("type", "str")
        if kind == "list":
            kind = f"list of {option.get('elements', 'raw')}"
        shown = yaml.safe_dump(option.get("default"), default_flow_style=True).strip().removesuffix("...").strip()
        default = "*required*" if option.get("required") else f"`{shown}`"
        description = option["description"]
        description = " ".join(plain(d) for d in (description if isinstance(description, list) else [description]))
        if option.get("choices"):
            description += " Choices: " + ", ".join(f"`{c}`" for c in option["choices"]) + "."
        for sub, sub_option in (option.get("options") or {}).items():
            req = ", required" if sub_option.get("required") else ""
            description += f" `{sub}` ({sub_option.get('type', 'str')}{req}): {plain(sub_option['description'])}"
        rows.append(f"| `{name}` | {kind} | {default} | {description} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    roles = [Path(a) for a in argv if a != "--check"]
    stale = False
    for role in roles:
        readme = role / "README.md"
        text = readme.read_text()
        before, rest = text.split(START, 1)
        _old, after = rest.split(END, 1)
        new = f"{before}{START}\n{table(role)}\n{END}{after}"
        if new != text:
            stale = True
            if check:
                print(f"{readme}: the variables table is out of date; run tools/role_readme.py {role}")
            else:
                readme.write_text(new)
    return 1 if stale and check else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
