"""Writes docs/reference/: one Markdown page per module, plugin and role of the collection, taken
from their own documentation, and checks that the pages in the repository are current.

    python tools/docs_reference.py                       # rewrite docs/reference/
    python tools/docs_reference.py --check [--junit F]   # exit 1 when a page is missing, out of
                                                         # date or left over, or README.md does
                                                         # not name a plugin, role or playbook;
                                                         # F gets one JUnit test case per page

The documentation is read the way Ansible reads it: one `ansible-doc --metadata-dump` of the
collection (doc fragments merged, role argument specs included), with ansible-doc from the
Python environment that runs this script and the collection found through
.cache/collections (the link tools/bootstrap.sh makes; COLLECTIONS_PATH overrides it). So a new
plugin gets its page without any change here. Ansible's markup (C(), O(), M(), ...) is turned
into Markdown with antsibull-docs-parser; links between pages of the collection are relative.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from antsibull_docs_parser import dom, parser
from antsibull_docs_parser.format import Formatter, LinkProvider, format_paragraphs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from junit import Case, write_suite  # noqa: E402  (tools/junit.py)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "reference"
COLLECTION = "sshkeys.ecs"
INDEX = "README.md"
README_CASE = "the top README.md names every plugin, role and playbook"
# Plugin types in the order the index lists them; any other type with entries follows.
TYPE_ORDER = ["module", "inventory", "filter", "test", "lookup", "connection", "callback", "role"]
TYPE_TITLES = {"module": "Modules", "inventory": "Inventory plugins", "filter": "Filters", "test": "Tests",
               "lookup": "Lookup plugins", "connection": "Connection plugins", "callback": "Callbacks",
               "role": "Roles"}
# ansible-doc reports Ansible's own keywords in the dump; they are not part of the collection.
SKIPPED_TYPES = {"keyword"}
NOTICE = ("<!-- Written by tools/docs_reference.py from the documentation in the {what}; "
          "edit that, then run `make docs-write`. -->")


# --- Ansible markup to Markdown --------------------------------------------------------------

def escape(text: str) -> str:
    """Escapes what Markdown (and a table cell) would otherwise read as markup."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def code(text: str) -> str:
    """An inline code span that survives backticks and table cells."""
    text = text.replace("|", "\\|").replace("\n", " ")
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def page_name(plugin_type: str, fqcn: str) -> str:
    return f"{fqcn.split('.')[-1]}_{plugin_type}.md"


def anchor(what: str, path: list[str], entrypoint: str | None = None) -> str:
    prefix = f"{entrypoint}-" if entrypoint else ""
    return f"{prefix}{'option' if what == 'option' else 'return'}-{'.'.join(path)}"


class Links(LinkProvider):
    """Pages of this collection link relatively; other collections link to the Ansible docs site."""

    def __init__(self, known: set[tuple[str, str]]):
        self.known = known

    def plugin_link(self, plugin: dom.PluginIdentifier) -> str | None:
        if (plugin.type, plugin.fqcn) in self.known:
            return page_name(plugin.type, plugin.fqcn)
        parts = plugin.fqcn.split(".")
        if len(parts) != 3 or plugin.fqcn.startswith(COLLECTION + "."):
            return None
        return f"https://docs.ansible.com/ansible/latest/collections/{parts[0]}/{parts[1]}/{parts[2]}_{plugin.type}.html"

    def plugin_option_like_link(self, plugin: dom.PluginIdentifier, entrypoint: str | None, what: str,
                                name: list[str], current_plugin: bool) -> str | None:
        target = "#" + anchor(what, name, entrypoint)
        if current_plugin:
            return target
        page = self.plugin_link(plugin)
        return page + target if page and not page.startswith("http") else None


class Markdown(Formatter):
    """Readable Markdown: backticks for code, light escaping, no raw HTML."""

    @staticmethod
    def _linked(text: str, url: str | None) -> str:
        return f"[{text}]({url})" if url else text

    def format_error(self, part: dom.ErrorPart) -> str:
        raise ValueError(f"broken markup in the documentation: {part.message}")

    def format_bold(self, part: dom.BoldPart) -> str:
        return f"**{escape(part.text)}**"

    def format_code(self, part: dom.CodePart) -> str:
        return code(part.text)

    def format_horizontal_line(self, part: dom.HorizontalLinePart) -> str:
        return "\n\n---\n\n"

    def format_italic(self, part: dom.ItalicPart) -> str:
        return f"*{escape(part.text)}*"

    def format_link(self, part: dom.LinkPart) -> str:
        return f"[{escape(part.text)}]({part.url})"

    def format_module(self, part: dom.ModulePart, url: str | None) -> str:
        return self._linked(code(part.fqcn), url)

    def format_rst_ref(self, part: dom.RSTRefPart) -> str:
        return escape(part.text)

    def format_url(self, part: dom.URLPart) -> str:
        return f"<{part.url}>"

    def format_text(self, part: dom.TextPart) -> str:
        return escape(part.text)

    def format_env_variable(self, part: dom.EnvVariablePart) -> str:
        return code(part.name)

    def format_option_name(self, part: dom.OptionNamePart, url: str | None) -> str:
        text = part.name if part.value is None else f"{part.name}={part.value}"
        return self._linked(code(text), url)

    def format_option_value(self, part: dom.OptionValuePart) -> str:
        return code(part.value)

    def format_plugin(self, part: dom.PluginPart, url: str | None) -> str:
        return self._linked(code(part.plugin.fqcn), url)

    def format_return_value(self, part: dom.ReturnValuePart, url: str | None) -> str:
        return self.format_option_name(part, url)  # type: ignore[arg-type]  # same fields


class Renderer:
    """Renders the pages of one collection; `known` are the (type, fqcn) pairs that get a page."""

    def __init__(self, known: set[tuple[str, str]]):
        self.links = Links(known)
        self.formatter = Markdown()
        self.current: dom.PluginIdentifier | None = None
        self.entrypoint: str | None = None

    def md(self, text: Any, sep: str = "\n\n") -> str:
        """Ansible doc text (a string or a list of paragraphs) as Markdown."""
        if text is None:
            return ""
        items = text if isinstance(text, list) else [text]
        context = parser.Context(current_plugin=self.current, role_entrypoint=self.entrypoint)
        paragraphs = parser.parse([str(item) for item in items], context, errors="exception")
        rendered = format_paragraphs(paragraphs, formatter=self.formatter, link_provider=self.links,
                                     par_sep=sep, current_plugin=self.current)
        return "\n".join(line.rstrip() for line in rendered.strip().splitlines())

    def cell(self, text: Any) -> str:
        """Doc text for one table cell: paragraphs separated by <br><br>, no line breaks."""
        return self.md(text, sep="<br><br>").replace("\n", " ")

    # --- sections ---

    def options_table(self, options: dict, what: str = "option") -> list[str]:
        header = "Key" if what != "option" else "Variable" if self.current and self.current.type == "role" else "Parameter"
        rows = [f"| {header} | Type | Description |", "|---|---|---|"]
        self._option_rows(options, [], what, rows)
        return rows

    def _option_rows(self, options: dict, parents: list[str], what: str, rows: list[str]) -> None:
        for name in sorted(options):
            spec = options[name] or {}
            path = parents + [name]
            label = f'<a id="{anchor(what, path, self.entrypoint)}"></a>{code(".".join(path))}'
            if spec.get("aliases"):
                label += "<br>aliases: " + ", ".join(code(a) for a in spec["aliases"])
            if spec.get("required"):
                label += "<br>**required**"
            kind = spec.get("type", "str")
            if spec.get("elements"):
                kind += f" of {spec['elements']}"
            details = [self.cell(spec.get("description"))]
            if what == "option":
                details.extend(self._option_details(spec))
            else:
                if spec.get("returned"):
                    details.append("Returned: " + self.cell(spec["returned"]))
                if "sample" in spec:
                    details.append("Sample: " + code(json.dumps(spec["sample"], sort_keys=True)))
            if spec.get("version_added") and spec.get("version_added_collection") not in (None, COLLECTION):
                details.append(f"Added in {spec['version_added_collection']} {spec['version_added']}.")
            rows.append(f"| {label} | {kind} | {'<br><br>'.join(d for d in details if d)} |")
            nested = spec.get("suboptions") or spec.get("options") or spec.get("contains")
            if isinstance(nested, dict):
                self._option_rows(nested, path, what, rows)

    def _option_details(self, spec: dict) -> list[str]:
        details = []
        default = spec.get("default")
        if spec.get("choices"):
            shown = [code(self.value(c)) + (" (default)" if c == default else "") for c in spec["choices"]]
            details.append("Choices: " + ", ".join(shown))
        if default is not None and default not in (spec.get("choices") or []):
            details.append("Default: " + code(self.value(default)))
        sources = []
        for source in spec.get("env") or []:
            sources.append(f"environment variable {code(source['name'])}")
        for source in spec.get("ini") or []:
            sources.append(f"ini {code('[' + source['section'] + '] ' + source['key'])}")
        for source in spec.get("vars") or []:
            sources.append(f"variable {code(source['name'])}")
        if spec.get("keyword"):
            sources.extend(f"keyword {code(k['name'])}" for k in spec["keyword"])
        if sources:
            details.append("Set from: " + ", ".join(sources) + ".")
        return details

    @staticmethod
    def value(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    def attributes(self, attributes: dict) -> list[str]:
        rows = ["| Attribute | Support | Description |", "|---|---|---|"]
        for name in sorted(attributes):
            spec = attributes[name]
            support = spec.get("support", "")
            if spec.get("details"):
                support += ": " + self.cell(spec["details"])
            rows.append(f"| {code(name)} | {support} | {self.cell(spec.get('description'))} |")
        return rows

    def seealso(self, items: list[dict]) -> list[str]:
        lines = []
        for item in items:
            if "module" in item:
                target = dom.PluginIdentifier(fqcn=item["module"], type="module")
            elif "plugin" in item:
                target = dom.PluginIdentifier(fqcn=item["plugin"], type=item["plugin_type"])
            else:
                target = None
            if target:
                url = self.links.plugin_link(target)
                head = self.formatter._linked(code(target.fqcn), url)  # pylint: disable=protected-access
            elif "link" in item:
                head = f"[{escape(item.get('name', item['link']))}]({item['link']})"
            else:
                head = escape(item.get("ref", ""))
            description = self.md(item.get("description"), sep=" ")
            lines.append(f"- {head}" + (f": {description}" if description else ""))
        return lines

    def bullets(self, items: Any) -> list[str]:
        return [f"- {self.md(item, sep=' ')}" for item in (items if isinstance(items, list) else [items])]

    # --- pages ---

    def plugin_page(self, plugin_type: str, fqcn: str, entry: dict) -> str:
        doc = entry["doc"]
        self.current, self.entrypoint = dom.PluginIdentifier(fqcn=fqcn, type=plugin_type), None
        out = [f"# {fqcn} ({plugin_type})", "", NOTICE.format(what=f"{plugin_type} itself"), "",
               self.md(doc.get("short_description")) + ".", ""]
        if doc.get("deprecated"):
            dep = doc["deprecated"]
            out += [f"**Deprecated**: {self.md(dep.get('why'), sep=' ')} "
                    f"Use instead: {self.md(dep.get('alternative'), sep=' ')}", ""]
        out += ["## Synopsis", "", self.md(doc.get("description")), ""]
        if doc.get("requirements"):
            out += ["## Requirements", "", *self.bullets(doc["requirements"]), ""]
        if doc.get("positional"):
            out += [f"Positional parameters: {code(doc['positional'])}.", ""]
        if doc.get("options"):
            out += ["## Parameters", "", *self.options_table(doc["options"]), ""]
        if doc.get("attributes"):
            out += ["## Attributes", "", *self.attributes(doc["attributes"]), ""]
        if doc.get("notes"):
            out += ["## Notes", "", *self.bullets(doc["notes"]), ""]
        if doc.get("seealso"):
            out += ["## See also", "", *self.seealso(doc["seealso"]), ""]
        if (entry.get("examples") or "").strip():
            out += ["## Examples", "", "```yaml", entry["examples"].strip("\n"), "```", ""]
        if entry.get("return"):
            out += ["## Return values", "", *self.options_table(entry["return"], what="return"), ""]
        if doc.get("author"):
            authors = doc["author"] if isinstance(doc["author"], list) else [doc["author"]]
            out += ["## Authors", "", *[f"- {escape(a)}" for a in authors], ""]
        return "\n".join(out)

    def role_page(self, fqcn: str, entry: dict) -> str:
        self.current = dom.PluginIdentifier(fqcn=fqcn, type="role")
        points = entry.get("entry_points") or {}
        main = points.get("main", {})
        out = [f"# {fqcn} (role)", "", NOTICE.format(what="role's meta/argument_specs.yml"), "",
               self.md(main.get("short_description") or fqcn) + ".", ""]
        for name in sorted(points, key=lambda n: (n != "main", n)):
            spec = points[name]
            self.entrypoint = name
            out += [f"## Entry point `{name}`", "", self.md(spec.get("description")), ""]
            if spec.get("options"):
                out += ["### Variables", "", *self.options_table(spec["options"]), ""]
            if spec.get("notes"):
                out += ["### Notes", "", *self.bullets(spec["notes"]), ""]
        self.entrypoint = None
        authors = main.get("author") or []
        if authors:
            authors = authors if isinstance(authors, list) else [authors]
            out += ["## Authors", "", *[f"- {escape(a)}" for a in authors], ""]
        return "\n".join(out)

    def index(self, entries: dict[tuple[str, str], dict]) -> str:
        self.current, self.entrypoint = None, None
        out = ["# Reference", "",
               NOTICE.format(what="plugins and roles"), "",
               f"Every module, plugin and role of `{COLLECTION}`, from its own documentation: the "
               "text is the same as `ansible-doc` shows. `make docs-write` rewrites these pages, "
               "`make docs` (part of `make test`) fails when they are out of date.", ""]
        types = sorted({key[0] for key in entries}, key=lambda t: (TYPE_ORDER.index(t) if t in TYPE_ORDER else 99, t))
        for plugin_type in types:
            out += [f"## {TYPE_TITLES.get(plugin_type, plugin_type.title() + ' plugins')}", "",
                    "| Name | Description |", "|---|---|"]
            for (kind, fqcn), entry in sorted(entries.items()):
                if kind != plugin_type:
                    continue
                if kind == "role":
                    short = (entry.get("entry_points", {}).get("main") or {}).get("short_description", "")
                else:
                    short = entry["doc"].get("short_description", "")
                out.append(f"| [{code(fqcn)}]({page_name(kind, fqcn)}) | {self.cell(short)} |")
            out.append("")
        return "\n".join(out)


# --- reading the documentation, writing and checking -----------------------------------------

def collections_path() -> str:
    return os.environ.get("COLLECTIONS_PATH") or str(ROOT / ".cache" / "collections")


def load_entries() -> dict[tuple[str, str], dict]:
    """(type, fqcn) -> ansible-doc's metadata entry, for everything the collection holds."""
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="false")
    done = subprocess.run([str(ansible_doc), "--metadata-dump", "--no-fail-on-errors", COLLECTION],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"ansible-doc --metadata-dump failed ({done.returncode}): {done.stderr.strip()}")
    dump = json.loads(done.stdout)["all"]
    entries = {}
    for plugin_type, plugins in dump.items():
        if plugin_type in SKIPPED_TYPES:
            continue
        for fqcn, entry in plugins.items():
            if fqcn.startswith(COLLECTION + "."):
                entries[(plugin_type, fqcn)] = entry
    if not entries:
        raise SystemExit(f"ansible-doc found nothing of {COLLECTION} in {collections_path()} (run make bootstrap)")
    return entries


def render_all(entries: dict[tuple[str, str], dict]) -> tuple[dict[str, str], dict[str, str]]:
    """({page file name: content}, {page file name: error}) for every entry, plus the index."""
    renderer = Renderer({key for key, entry in entries.items() if "error" not in entry})
    pages: dict[str, str] = {}
    errors: dict[str, str] = {}
    for (plugin_type, fqcn), entry in sorted(entries.items()):
        name = page_name(plugin_type, fqcn)
        try:
            if "error" in entry:
                raise ValueError(entry["error"])
            text = renderer.role_page(fqcn, entry) if plugin_type == "role" else \
                renderer.plugin_page(plugin_type, fqcn, entry)
        except (ValueError, KeyError, TypeError) as exc:
            errors[name] = f"the documentation of {plugin_type} {fqcn} cannot be rendered: {exc}"
            continue
        pages[name] = text.rstrip("\n") + "\n"
    pages[INDEX] = renderer.index({k: e for k, e in entries.items() if "error" not in e}).rstrip("\n") + "\n"
    return pages, errors


def write(pages: dict[str, str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.md"):
        if old.name not in pages:
            old.unlink()
            print(f"removed docs/reference/{old.name}")
    for name, text in pages.items():
        path = OUT / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote docs/reference/{name}")


def check(pages: dict[str, str], errors: dict[str, str]) -> list[tuple[str, str | None]]:
    """One (page, problem or None) per expected or present page."""
    results: list[tuple[str, str | None]] = []
    present = {p.name for p in OUT.glob("*.md")} if OUT.is_dir() else set()
    for name in sorted(set(pages) | set(errors) | present):
        if name in errors:
            problem: str | None = errors[name]
        elif name not in pages:
            problem = f"docs/reference/{name} belongs to no plugin or role of the collection"
        elif name not in present:
            problem = f"docs/reference/{name} is missing"
        elif (OUT / name).read_text(encoding="utf-8") != pages[name]:
            problem = f"docs/reference/{name} is out of date"
        else:
            problem = None
        results.append((name, problem))
    return results


def readme_gaps(entries: dict[tuple[str, str], dict]) -> str | None:
    """What the top README.md does not name: every plugin, role and playbook must be in it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = {key[1] for key in entries}
    names.update(f"{COLLECTION}.{p.stem}" for p in (ROOT / "playbooks").glob("*.yml"))
    missing = sorted(n for n in names if f"`{n}`" not in text and f"`{n.split('.')[-1]}`" not in text)
    return f"README.md does not name {', '.join(missing)}" if missing else None


def write_junit(path: Path, results: list[tuple[str, str | None]]) -> None:
    cases = []
    for name, problem in results:
        hint = "add them to its tables" if name == README_CASE else "run `make docs-write` and commit docs/reference/"
        cases.append(Case("docs.reference", name, failure=problem or None, text=f"{problem}; {hint}" if problem else None))
    write_suite(path, "docs", cases)


def main(argv: list[str]) -> int:
    junit = None
    if "--junit" in argv:
        junit = Path(argv[argv.index("--junit") + 1])
    entries = load_entries()
    pages, errors = render_all(entries)
    if "--check" not in argv:
        for problem in errors.values():
            print(problem, file=sys.stderr)
        write(pages)
        return 1 if errors else 0
    results = check(pages, errors)
    results.append((README_CASE, readme_gaps(entries)))
    if junit:
        write_junit(junit, results)
    stale = [result[1] for result in results if result[1]]
    for problem in stale:
        print(problem)
    print(f"docs/reference: {len(results) - len(stale)} of {len(results)} checks passed (every page, and the README)")
    if any(problem for name, problem in results if name != README_CASE):
        print("run `make docs-write` and commit docs/reference/")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
