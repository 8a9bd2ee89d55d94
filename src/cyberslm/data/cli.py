"""`cyberslm data ...`: build labelled tables and SFT sets. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path

import typer

from cyberslm.data.sft import sft_command

app = typer.Typer(no_args_is_help=True)
app.command("sft")(sft_command)


@app.command("cwe")
def cwe_command(
    feeds: list[Path] = typer.Argument(..., help="NVD 1.1 feeds, NVD API 2.0 files, CVE JSON 5 files/folders/zips."),
    out: Path = typer.Option(..., "-o", "--out", help="Output table: OUT.jsonl or OUT.parquet."),
    exclude: list[Path] = typer.Option(
        [], "--exclude", help="Benchmark file (CTI-Bench TSV or CVE id list) whose CVEs must not appear; repeatable."
    ),
    near_dup: float = typer.Option(
        0.8, "--near-dup", help="Also drop descriptions this similar (word 3-shingle Jaccard) to an excluded one."
    ),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Report and skip malformed records instead of stopping."),
    keep_placeholders: bool = typer.Option(
        False, "--keep-placeholders", help="Keep records labelled only NVD-CWE-Other/NVD-CWE-noinfo (or nothing)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again instead of resuming an existing output."),
) -> None:
    """CVE feeds -> a CVE-to-CWE table (id, description, cwe, cwes, cvss_v3, published, year)."""
    from rich.console import Console
    from rich.table import Table

    from cyberslm.data.cwe_table import build_cwe_table

    stats = build_cwe_table(
        feeds, out, exclude=exclude, skip_bad=skip_bad, keep_placeholders=keep_placeholders,
        overwrite=overwrite, progress=True, near_dup=near_dup,
    )
    table = Table(title=f"{out}", show_header=False)
    for name, value in stats.to_dict().items():
        table.add_row(name.replace("_", " "), f"{value:,}")
    Console().print(table)
