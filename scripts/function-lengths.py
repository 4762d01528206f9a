#!/usr/bin/env python3
"""Reports every function in src/ whose body is longer than a limit.

    scripts/function-lengths.py [--max 80] [--all] [ROOT]

A function's length is the number of lines from its opening brace to its
closing brace, both included. Free functions, functions in namespaces, member
functions defined in or out of their class, constructors and lambdas bound at
namespace scope are all counted; a lambda inside a function counts towards that
function. Prints one line per offender (file:line: name: N lines) and exits 1
if there is any, 0 otherwise.

This is a scanner, not a C++ parser: comments, string and character literals
(raw strings included) are blanked first, then braces are matched and each
brace at namespace or class scope is classified by the text before it.
"""
import argparse
import pathlib
import re
import sys

CONTROL = {"if", "for", "while", "switch", "catch", "do", "else", "try", "return"}
QUALIFIERS = re.compile(r"\)\s*(?:const|noexcept(?:\([^)]*\))?|override|final|mutable|&&?|\s)*(?:->[^{;]*)?$")


def blank(text):
    """Returns text with comments and literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^()\\ ]{0,16})\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j]))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator: 1'000
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else " " * (j - i))
            i = j
        elif c == "#" and (i == 0 or text[i - 1] == "\n"):
            # Preprocessor lines (with continuations) hold no function bodies.
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != "\\":
                    break
                j = k + 1
            out.append(re.sub(r"[^\n]", " ", text[i:k]))
            i = k
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_templates(header):
    """Drops a leading template<...> clause and attributes from a declaration."""
    header = re.sub(r"\[\[[^\]]*\]\]", " ", header).strip()
    while header.startswith("template"):
        depth, k = 0, header.find("<")
        if k < 0:
            break
        for j in range(k, len(header)):
            depth += {"<": 1, ">": -1}.get(header[j], 0)
            if depth == 0:
                header = header[j + 1:].strip()
                break
        else:
            break
    return header


def function_name(header):
    """The qualified name before the parameter list, e.g. Service::run_job."""
    depth = 0
    for j, c in enumerate(header):
        if c == "(" and depth == 0:
            m = re.search(r"((?:[A-Za-z_~]\w*(?:<[^()]*>)?::)*(?:operator\s*\S+?|[A-Za-z_~]\w*))\s*$", header[:j])
            if m:
                return m.group(1)
            return None
        if c == "<":
            depth += 1
        elif c == ">" and depth:
            depth -= 1
    return None


def classify(header):
    """What a brace at namespace or class scope opens: namespace, class, function, init or other."""
    h = strip_templates(" ".join(header.split()))
    if h.startswith('extern "'):
        return "namespace", None
    if m := re.match(r"^(?:inline\s+)?namespace\b\s*([\w:]*)", h):
        return "namespace", m.group(1) or None
    first = h.split("(")[0]
    if re.search(r"\b(class|struct|union|enum)\b", first) and "=" not in first:
        return "class", re.findall(r"(\w+)(?:\s+final)?\s*(?::[^{]*)?$", first)[0] if re.search(r"\w", first) else None
    name = function_name(h)
    if name and name.split("::")[-1] not in CONTROL:
        if QUALIFIERS.search(h):
            return "function", name
        if re.search(r"\)\s*:\s*\w", h):  # constructor with an initializer list
            return "ctor-init", name
    return "other", None


def functions(path):
    """Yields (line, name, length) for each function body in a source file."""
    text = blank(path.read_text(encoding="utf-8", errors="replace"))
    line = 1
    header = []
    # Each entry: (kind, name, opening line).
    stack = []
    pending_ctor = None
    scope_names = []
    for c in text:
        if c == "\n":
            line += 1
        in_function = any(kind in ("function", "body") for kind, _, _ in stack)
        if c == "{":
            if in_function:
                stack.append(("body", None, line))
                continue
            if pending_ctor is not None:
                # A brace initializer inside a constructor's initializer list,
                # or the constructor's body after it.
                h = "".join(header).rstrip()
                if re.search(r"[\w>]$", h) and not h.endswith(")"):
                    stack.append(("init", None, line))
                    continue
                stack.append(("function", pending_ctor, line))
                pending_ctor = None
                header = []
                continue
            kind, name = classify("".join(header))
            if kind == "ctor-init":
                h = "".join(header).rstrip()
                if re.search(r"[\w>]$", h) and not h.endswith(")"):
                    pending_ctor = name
                    stack.append(("init", None, line))
                    continue
                kind = "function"
            stack.append((kind, name, line))
            if kind in ("namespace", "class"):
                scope_names.append(name)
            header = []
        elif c == "}":
            if not stack:
                continue
            kind, name, start = stack.pop()
            if kind == "init":
                header.append(c)
                continue
            if kind == "function":
                scopes = [s for s in scope_names if s]
                yield start, "::".join(scopes + [name]), line - start + 1
            elif kind in ("namespace", "class"):
                scope_names.pop()
            if not any(k in ("function", "body") for k, _, _ in stack):
                header = []
        elif c == ";" and not in_function and pending_ctor is None:
            header = []
        elif not in_function:
            header.append(c)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=pathlib.Path(__file__).resolve().parent.parent / "src")
    parser.add_argument("--max", type=int, default=80, help="longest body allowed, in lines (default 80)")
    parser.add_argument("--all", action="store_true", help="print every function, longest first")
    args = parser.parse_args()
    root = pathlib.Path(args.root)
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix in (".cpp", ".h", ".cc", ".hpp") and path.is_file():
            for line, name, length in functions(path):
                found.append((length, f"{path.relative_to(root.parent)}:{line}", name))
    found.sort(key=lambda f: (-f[0], f[1]))
    offenders = [f for f in found if f[0] > args.max]
    try:
        for length, where, name in found if args.all else offenders:
            print(f"{where}: {name}: {length} lines")
    except BrokenPipeError:
        return 1 if offenders else 0
    if offenders:
        print(f"{len(offenders)} function(s) longer than {args.max} lines", file=sys.stderr)
        return 1
    print(f"{len(found)} functions, none longer than {args.max} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
