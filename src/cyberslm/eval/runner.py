"""Run tasks against a backend, writing every response as it arrives, then score.

A run directory is keyed by model, tasks, protocol and trials. Each response is appended to
`responses.jsonl` (key = task|index|trial), so re-running the same command asks only what is
missing and a Ctrl-C loses at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, pstdev

from cyberslm.errors import CyberslmError
from cyberslm.eval.protocol import Protocol
from cyberslm.eval.scoring import ScoringContext
from cyberslm.eval.tasks import Item, Task
from cyberslm.io import JsonlAppender
from cyberslm.models.backend import Backend, GenerationConfig


@dataclass
class RunConfig:
    model: str
    tasks: list[Task]
    protocol: Protocol
    data_dir: Path
    output_dir: Path = Path("runs")
    trials: int | None = None  # None: the protocol's default
    temperature: float | None = None  # None: the protocol's default
    limit: int | None = None
    max_new_tokens: int = 512
    batch_size: int = 8
    seed: int = 1234
    grounded: bool = False
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir, self.output_dir = Path(self.data_dir), Path(self.output_dir)

    @property
    def n_trials(self) -> int:
        return self.trials if self.trials is not None else self.protocol.trials

    @property
    def temp(self) -> float:
        return self.temperature if self.temperature is not None else self.protocol.temperature

    def run_dir(self) -> Path:
        """runs/<model>__<tasks>__<protocol>__t<trials>[...]: the same command lands in the same folder."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model).strip("_")[-60:]
        names = "+".join(t.name.removeprefix("cti-") for t in self.tasks)
        if len(names) > 40:
            names = hashlib.sha1(names.encode()).hexdigest()[:10]
        parts = [slug, names, self.protocol.name, f"t{self.n_trials}"]
        if self.temp != self.protocol.temperature:
            parts.append(f"temp{self.temp:g}")
        if self.grounded:
            parts.append("grounded")
        return self.output_dir / "__".join(parts)


def response_key(task: str, index: int, trial: int) -> str:
    return f"{task}|{index}|{trial}"


def _grounding():
    try:
        from cyberslm.ask.grounding import grounded_messages
    except ImportError as exc:
        raise CyberslmError(
            "--grounded needs cyberslm.ask.grounding.grounded_messages, which is not available yet"
        ) from exc
    return grounded_messages


def collect(backend: Backend, config: RunConfig, items: dict[str, list[Item]]) -> JsonlAppender:
    """Ask the backend every (task, item, trial) not yet in the run's JSONL; append answers as they come."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    run_dir = config.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    store = JsonlAppender(run_dir / "responses.jsonl")
    done = store.done_keys("key")
    ground = _grounding() if config.grounded else None
    pending = [
        (task, item, trial)
        for task in config.tasks
        for trial in range(config.n_trials)
        for item in items[task.name]
        if response_key(task.name, item.index, trial) not in done
    ]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not config.progress) as progress, store:
        bar = progress.add_task(f"{config.model} ({len(done)} cached)", total=len(pending))
        # One batch = one trial (one seed, one generation config); tasks may share a batch.
        by_trial: dict[int, list[tuple[Task, Item]]] = {}
        for task, item, trial in pending:
            by_trial.setdefault(trial, []).append((task, item))
        for trial, todo in by_trial.items():
            seed = config.seed + trial
            gen = GenerationConfig(max_new_tokens=config.max_new_tokens, temperature=config.temp, seed=seed)
            for start in range(0, len(todo), config.batch_size):
                batch = todo[start : start + config.batch_size]
                conversations = [config.protocol.messages(it.prompt) for _, it in batch]
                if ground is not None:
                    conversations = [ground(c) for c in conversations]
                t0 = time.perf_counter()
                answers = backend.generate(conversations, gen)
                seconds = (time.perf_counter() - t0) / len(batch)
                for (task, it), answer in zip(batch, answers, strict=True):
                    store.write({"key": response_key(task.name, it.index, trial), "task": task.name,
                                 "index": it.index, "trial": trial, "seed": seed, "response": answer,
                                 "seconds": round(seconds, 4)})
                progress.advance(bar, len(batch))
    return store


def score(config: RunConfig, items: dict[str, list[Item]], context: ScoringContext) -> dict:
    """Score every trial of every task from the JSONL; mean and std across trials."""
    rows = {row["key"]: row for row in JsonlAppender(config.run_dir() / "responses.jsonl").read()}
    results = {}
    for task in config.tasks:
        trials = []
        for trial in range(config.n_trials):
            got = [(it, rows.get(response_key(task.name, it.index, trial))) for it in items[task.name]]
            answered = [(it, r["response"]) for it, r in got if r is not None]
            if not answered:
                continue
            its, responses = zip(*answered, strict=True)
            trials.append(task.score(task, list(its), list(responses), config.protocol, context))
        results[task.name] = summarize(task, trials)
    return results


def summarize(task: Task, trials: list[dict]) -> dict:
    """Per metric: mean and population std across trials; lists (unparseable ids) kept per trial."""
    out: dict = {"primary": task.primary, "higher_is_better": task.higher_is_better,
                 "trials": len(trials), "metrics": {}, "per_trial": trials}
    if not trials:
        return out
    for name, value in trials[0].items():
        if isinstance(value, list) or name == "n":
            continue
        values = [t[name] for t in trials if isinstance(t.get(name), (int, float))]
        if values:
            out["metrics"][name] = {"mean": mean(values), "std": pstdev(values) if len(values) > 1 else 0.0}
    out["n"] = trials[0]["n"]
    out["unparseable_mean"] = mean(len(t["unparseable"]) for t in trials)
    return out


def scoring_context(alias: Path | None = None, related: Path | None = None, tasks: list[Task] = ()) -> ScoringContext:
    """Load alias tables and the knowledge base only for the tasks that need them."""
    names = {t.name for t in tasks}
    context = ScoringContext()
    if "cti-taa" in names:
        from cyberslm.eval.taa import load_actor_table

        context.actors = load_actor_table(alias, related)
    if names & {"cti-rcm", "cti-rcm-2021"}:
        try:
            from cyberslm.knowledge import load_knowledge

            context.kb = load_knowledge()
        except (ImportError, CyberslmError):
            context.kb = None  # catalog and hierarchy metrics are reported as unavailable
    return context


def evaluate(backend: Backend, config: RunConfig, alias: Path | None = None, related: Path | None = None) -> dict:
    """Collect missing responses, score, and write report.json/.md/.png into the run directory."""
    from cyberslm.eval.report import write_report

    items = {task.name: task.load(config.data_dir, config.limit) for task in config.tasks}
    collect(backend, config, items)
    results = score(config, items, scoring_context(alias, related, config.tasks))
    report = {
        "model": config.model,
        "protocol": config.protocol.name,
        "protocol_description": config.protocol.description,
        "temperature": config.temp,
        "trials": config.n_trials,
        "seeds": [config.seed + t for t in range(config.n_trials)],
        "limit": config.limit,
        "grounded": config.grounded,
        "data_dir": str(config.data_dir),
        "run_dir": str(config.run_dir()),
        "tasks": results,
    }
    (config.run_dir() / "config.json").write_text(json.dumps(
        {k: report[k] for k in ("model", "protocol", "temperature", "trials", "limit", "grounded")}, indent=2))
    write_report(report, config.run_dir())
    return report
