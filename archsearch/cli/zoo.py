"""``archsearch zoo``: the seed networks, their exact counts and the papers' figures."""

from __future__ import annotations

from typing import Annotated

import typer

from archsearch.cli.common import DocFormat, Format, FormatOption, emit, handle_errors
from archsearch.cli.results import emit_document
from archsearch.cost import count

app = typer.Typer(help="The seed zoo: papers' networks with exact counts.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(
    space: Annotated[
        str, typer.Option(help="Report whether each network is a member of this space.")
    ] = "hybrid",
    fmt: FormatOption = Format.table,
) -> None:
    """Each network's exact params and GFLOPs (1 FLOP = 1 MAC) beside the paper's figures."""
    from archsearch import zoo
    from archsearch.spaces import load_space

    s = load_space(space)
    rows = []
    for e in zoo.entries():
        cost = count(e.arch)
        gflops = cost.macs / 1e9
        rows.append(
            {
                "name": e.name,
                "params": cost.params,
                "reference_params": e.params,
                "paper_params": e.paper_params,
                "macs": cost.macs,
                "paper_gflops": e.paper_gflops,
                "gflops_diff_pct": round(100 * (gflops / e.paper_gflops - 1), 1),
                f"in_{s.name}": bool(s.contains(e.arch)),
                "paper": e.paper,
            }
        )
    emit(
        rows,
        [
            "name",
            "params",
            "reference_params",
            "paper_params",
            "macs",
            "paper_gflops",
            "gflops_diff_pct",
            f"in_{s.name}",
            "paper",
        ],
        fmt,
        title="zoo",
        caption="params: archsearch's count; reference_params: the reference implementation's. "
        "GFLOPs: 1 FLOP = 1 multiply-accumulate (MAC), as the seed papers report.",
    )


@app.command("show")
@handle_errors
def show(
    name: Annotated[str, typer.Argument(help="A zoo network (see `archsearch zoo list`).")],
    fmt: Annotated[
        DocFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
    ] = DocFormat.yaml,
) -> None:
    """One network: provenance, exact cost, the paper's figures, notes and its spec."""
    from archsearch import zoo

    e = zoo.entry(name)
    extra = {
        "name": e.name,
        "paper": e.paper,
        "code": e.code,
        "reference_params": e.params,
        "paper_params": e.paper_params,
        "paper_gflops": e.paper_gflops,
        "gflops_note": e.gflops_note,
        "notes": e.notes.strip(),
    }
    from archsearch.search.queries import arch_document

    emit_document(arch_document(e.arch, **extra), fmt)
