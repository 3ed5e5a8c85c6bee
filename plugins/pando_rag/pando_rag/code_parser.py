"""Symbols from source files with tree-sitter and the per-language grammar wheels (no download).

``parse_symbols(language, source)`` walks the syntax tree and returns the definitions it knows
for that language — classes, structs, interfaces, traits, enums, functions, methods, type aliases,
modules — each with its ``Class/method`` name path, type, signature (the text before its body),
docstring (Python's first string, or the comments right above), and 1-based line range.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
}

# node type -> symbol type; "container" types give their name to what they hold
_DEFINITIONS = {
    "python": {"class_definition": "class", "function_definition": "function"},
    "javascript": {
        "class_declaration": "class",
        "function_declaration": "function",
        "generator_function_declaration": "function",
        "method_definition": "method",
    },
    "typescript": {
        "class_declaration": "class",
        "abstract_class_declaration": "class",
        "function_declaration": "function",
        "method_definition": "method",
        "interface_declaration": "interface",
        "type_alias_declaration": "type_alias",
        "enum_declaration": "enum",
        "internal_module": "namespace",
    },
    "go": {"function_declaration": "function", "method_declaration": "method", "type_spec": "type"},
    "rust": {
        "function_item": "function",
        "struct_item": "struct",
        "enum_item": "enum",
        "trait_item": "trait",
        "type_item": "type_alias",
        "mod_item": "module",
        "impl_item": "impl",
    },
}
_DEFINITIONS["tsx"] = _DEFINITIONS["typescript"]
_BODY_FIELDS = ("body", "declaration_list")
_COMMENTS = {"comment", "line_comment", "block_comment"}


@dataclass
class Symbol:
    name: str
    name_path: str
    symbol_type: str
    start_line: int
    end_line: int
    signature: str
    doc_string: str
    source_code: str
    parent_index: int | None = None  # index of the parent in the list returned
    children: list[int] = field(default_factory=list)


@functools.cache
def _parser(language: str):  # noqa: ANN202
    from tree_sitter import Language, Parser

    if language == "python":
        import tree_sitter_python as grammar

        lang = grammar.language()
    elif language == "javascript":
        import tree_sitter_javascript as grammar

        lang = grammar.language()
    elif language in ("typescript", "tsx"):
        import tree_sitter_typescript as grammar

        lang = grammar.language_tsx() if language == "tsx" else grammar.language_typescript()
    elif language == "go":
        import tree_sitter_go as grammar

        lang = grammar.language()
    elif language == "rust":
        import tree_sitter_rust as grammar

        lang = grammar.language()
    else:
        raise ValueError(f"no grammar for {language}")
    return Parser(Language(lang))


def _text(source: bytes, node) -> str:  # noqa: ANN001
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _name(language: str, node, source: bytes) -> str | None:  # noqa: ANN001
    if node.type == "impl_item":  # `impl Trait for Type` is named for the type
        target = node.child_by_field_name("type")
        return _text(source, target) if target is not None else None
    name = node.child_by_field_name("name")
    return _text(source, name) if name is not None else None


def _kind(language: str, node, symbol_type: str, source: bytes, inside_class: bool) -> str:  # noqa: ANN001
    if symbol_type == "function" and inside_class:
        return "method"
    if language == "go" and symbol_type == "type":
        inner = node.child_by_field_name("type")
        if inner is not None:
            return {"struct_type": "struct", "interface_type": "interface"}.get(inner.type, "type_alias")
    return symbol_type


def _body(node):  # noqa: ANN001, ANN202
    for name in _BODY_FIELDS:
        body = node.child_by_field_name(name)
        if body is not None:
            return body
    return None


def _signature(source: bytes, node) -> str:  # noqa: ANN001
    body = _body(node)
    end = body.start_byte if body is not None and body.start_byte > node.start_byte else node.end_byte
    text = " ".join(source[node.start_byte : end].decode("utf-8", "replace").split())
    return text.rstrip(" {:")[:300]


def _doc(language: str, node, source: bytes) -> str:  # noqa: ANN001
    if language == "python":
        body = node.child_by_field_name("body")
        if body is not None and body.named_child_count:
            first = body.named_children[0]
            if first.type == "expression_statement" and first.named_child_count and first.named_children[0].type == "string":
                raw = _text(source, first.named_children[0])
                return raw.strip("\"'rbuRBU \n").strip()[:2000]
        return ""
    comments = []
    sibling = node.prev_named_sibling
    line = node.start_point.row
    while sibling is not None and sibling.type in _COMMENTS and sibling.end_point.row >= line - 1:
        comments.append(_text(source, sibling))
        line = sibling.start_point.row
        sibling = sibling.prev_named_sibling
    lines = []
    for comment in reversed(comments):
        for raw in comment.splitlines():
            lines.append(raw.strip().lstrip("/*!").rstrip("*/").strip())
    return "\n".join(x for x in lines if x)[:2000]


def parse_symbols(language: str, source: bytes) -> list[Symbol]:
    definitions = _DEFINITIONS[language]
    tree = _parser(language).parse(source)
    symbols: list[Symbol] = []

    def visit(node, parent: int | None, path: str, inside_class: bool) -> None:  # noqa: ANN001
        for child in node.named_children:
            target = child
            if child.type in ("decorated_definition", "export_statement"):
                inner = child.child_by_field_name("definition") or child.child_by_field_name("declaration")
                target = inner if inner is not None else child
            symbol_type = definitions.get(target.type)
            if language == "go" and target.type == "method_declaration":
                receiver = target.child_by_field_name("receiver")
                owner = _text(source, receiver).strip("()").split()[-1].lstrip("*") if receiver is not None else ""
                base = owner or path
            else:
                base = path
            name = _name(language, target, source) if symbol_type else None
            if symbol_type and name:
                kind = _kind(language, target, symbol_type, source, inside_class)
                name_path = f"{base}/{name}" if base else name
                index = len(symbols)
                symbols.append(
                    Symbol(
                        name=name,
                        name_path=name_path,
                        symbol_type=kind,
                        start_line=child.start_point.row + 1,
                        end_line=child.end_point.row + 1,
                        signature=_signature(source, target),
                        doc_string=_doc(language, child if language != "python" else target, source),
                        source_code=_text(source, child)[:20000],
                        parent_index=parent,
                    )
                )
                if parent is not None:
                    symbols[parent].children.append(index)
                body = _body(target)
                if body is not None:
                    holds_methods = kind in ("class", "struct", "interface", "trait", "impl", "enum")
                    visit(body, index, name_path, holds_methods)
            elif target.type in ("lexical_declaration", "variable_declaration") and language in ("javascript", "typescript", "tsx"):
                # const f = () => ... / function expressions: functions by another spelling
                for declarator in target.named_children:
                    value = declarator.child_by_field_name("value")
                    dname = declarator.child_by_field_name("name")
                    if value is not None and dname is not None and value.type in ("arrow_function", "function_expression", "function"):
                        name = _text(source, dname)
                        symbols.append(
                            Symbol(
                                name=name,
                                name_path=f"{path}/{name}" if path else name,
                                symbol_type="function",
                                start_line=child.start_point.row + 1,
                                end_line=child.end_point.row + 1,
                                signature=_signature(source, value) or name,
                                doc_string=_doc(language, child, source),
                                source_code=_text(source, child)[:20000],
                                parent_index=parent,
                            )
                        )
            elif target.type in ("type_declaration",) or (target.type in ("class_body",)):
                visit(target, parent, path, inside_class)

    visit(tree.root_node, None, "", False)
    return symbols
