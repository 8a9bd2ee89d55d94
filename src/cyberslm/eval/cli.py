"""`cyberslm eval run` and `cyberslm eval download`. Heavy imports happen inside the commands."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="CTI-Bench evaluation of any local model.")


@app.command("run")
def run_command(
    model: str = typer.Option("hf:smollm2", "--model", "-m", help="Backend spec: hf:..., openai:..., vllm:..., classifier:..."),
    tasks: str = typer.Option("all", "--tasks", help="Comma-separated: cti-mcq,cti-rcm,cti-rcm-2021,cti-vsp,cti-ate,cti-taa"),
    data_dir: Path = typer.Option(Path("cti-bench"), "--data-dir", help="Folder with the official TSVs"),
    protocol: str = typer.Option("foundation-sec", "--protocol", help="foundation-sec or ctibench"),
    trials: int | None = typer.Option(None, "--trials", help="Seeded trials (default: 5 foundation-sec, 1 ctibench)"),
    temperature: float | None = typer.Option(None, "--temperature", help="Default: 0.3 foundation-sec, 0 ctibench"),
    limit: int | None = typer.Option(None, "--limit", help="First N items per task"),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens"),
    batch_size: int = typer.Option(8, "--batch-size"),
    seed: int = typer.Option(1234, "--seed", help="Seed of trial 0; trial t uses seed + t"),
    output_dir: Path = typer.Option(Path("runs"), "--output-dir"),
    grounded: bool = typer.Option(False, "--grounded", help="Add retrieved MITRE passages to each prompt"),
    taa_alias: Path | None = typer.Option(None, "--taa-alias", help="JSON {actor: [aliases]} merged into the TAA table"),
    taa_related: Path | None = typer.Option(None, "--taa-related", help="JSON {actor: [related groups]}"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Evaluate a model on CTI-Bench; re-running the same command resumes where it stopped."""
    from cyberslm.eval.protocol import get_protocol
    from cyberslm.eval.runner import RunConfig, evaluate
    from cyberslm.eval.tasks import get_tasks
    from cyberslm.models.backend import load_backend

    config = RunConfig(
        model=model, tasks=get_tasks(tasks), protocol=get_protocol(protocol), data_dir=data_dir,
        output_dir=output_dir, trials=trials, temperature=temperature, limit=limit,
        max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, grounded=grounded, progress=progress,
    )
    if config.n_trials < 1:
        raise typer.BadParameter("--trials must be at least 1")
    for task in config.tasks:  # fail on bad data before loading a model
        task.load(data_dir, limit)
    # --batch-size is also the backend's own batch (hf) or number of requests in flight (openai)
    scheme = model.partition(":")[0]
    options = {"hf": {"batch_size": batch_size}, "openai": {"concurrency": batch_size}}.get(scheme, {})
    backend = load_backend(model, **options)
    try:
        report = evaluate(backend, config, alias=taa_alias, related=taa_related)
    finally:
        backend.close()
    run_dir = Path(report["run_dir"])
    typer.echo((run_dir / "report.md").read_text(encoding="utf-8"))
    typer.echo(f"report: {run_dir / 'report.json'}, {run_dir / 'report.md'}, {run_dir / 'report.png'}")


@app.command("download")
def download_command(
    dest: Path = typer.Option(Path("cti-bench"), "--dest", help="Where to save the TSVs"),
    base_url: str | None = typer.Option(None, "--base-url", help="Raw-file base URL of the cti-bench repository"),
) -> None:
    """Fetch the official CTI-Bench TSVs (xashru/cti-bench, CC BY-NC-SA 4.0) into --dest."""
    from cyberslm.eval.download import DEFAULT_BASE_URL, download

    for path in download(dest, base_url or DEFAULT_BASE_URL):
        typer.echo(str(path))
