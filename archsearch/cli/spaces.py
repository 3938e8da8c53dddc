"""``archsearch spaces`` and ``archsearch blocks``: what can be searched, and with what."""

from __future__ import annotations

import json
from typing import Annotated

import typer
import yaml

from archsearch.blocks import get_block, list_blocks
from archsearch.cli.common import DocFormat, Format, FormatOption, console, emit, handle_errors

app = typer.Typer(help="Search spaces: built-in ones and user YAML files.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(fmt: FormatOption = Format.table) -> None:
    """The built-in spaces with their size."""
    from archsearch.spaces import list_spaces, load_space

    rows = []
    for name in list_spaces():
        space = load_space(name)
        size = space.size()
        rows.append(
            {
                "name": name,
                "stages": len(space.stages),
                "input": "x".join(map(str, space.input_shape)),
                "choices": len(space.choices()),
                "log10_size": size.log10_text if fmt is Format.table else size.log10_estimate,
                "upper_bound": size.upper_bound,
                "description": space.description.split(".")[0],
            }
        )
    emit(
        rows,
        ["name", "stages", "input", "choices", "log10_size", "description"]
        + ([] if fmt is Format.table else ["upper_bound"]),
        fmt,
        title="spaces",
    )


@app.command("show")
@handle_errors
def show(
    space: Annotated[str, typer.Argument(help="A built-in space name or a YAML file.")],
    fmt: Annotated[
        DocFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
    ] = DocFormat.yaml,
) -> None:
    """A space's stages, block types and choices, constraints and estimated size."""
    from archsearch.spaces import load_space

    s = load_space(space)
    size = s.size()
    doc = s.describe()
    doc["size"] = {
        "unconstrained": f"{size.total:.3e}",
        "feasible_fraction": size.feasible_fraction,
        "log10_feasible": size.log10_estimate,
        **({"log10_is_upper_bound": True} if size.upper_bound else {}),
    }
    if fmt is DocFormat.json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(
            yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=99), nl=False
        )


def blocks(fmt: FormatOption = Format.table) -> None:
    """The block vocabulary: each type's roles, parameters (with defaults) and paper."""
    rows = []
    for name in list_blocks():
        family = get_block(name)
        params = ", ".join(
            p.name + ("" if p.default is None or callable(p.default) else f"={p.default}")
            for p in family.params
        )
        aliases = ", ".join(a.name for a in family.aliases)
        rows.append(
            {
                "type": name,
                "roles": ",".join(sorted(family.roles)),
                "parameters": params,
                "aliases": aliases or "-",
                "reference": family.reference,
            }
        )
    emit(rows, ["type", "roles", "parameters", "aliases", "reference"], fmt, title="block types")
    if fmt is Format.table:
        console.print("Parameters without '=' are required or default to a multiple of the width.")
