"""`polylens eval QUESTIONS.jsonl --ask`: evidence recall without a model; with one,
answer quality, citations against gold pages and abstention, answers recorded."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from polylens.cli._common import err_console, out_console, print_table


def run_ask_eval(
    questions: Path,
    *,
    index_dir: Path,
    endpoint: str | None,
    model: str | None,
    max_evidence: int | None,
    record: Path | None,
    answers: Path | None,
    as_json: bool,
) -> None:
    from polylens.ask.asker import Asker, collect
    from polylens.ask.settings import resolve_settings
    from polylens.engine import open_index
    from polylens.errors import InputError
    from polylens.eval import ask_eval as E

    cases = E.load_cases(questions)
    with open_index(index_dir, create=False) as idx:
        settings = resolve_settings(
            idx.config, endpoint=endpoint, model=model, max_evidence=max_evidence
        )
        asker = Asker(idx, settings)
        if answers is not None:
            recorded = E.read_recorded(answers)
            missing = [c.id for c in cases if c.id not in recorded]
            if missing:
                raise InputError(f"{answers}: no recorded answer for {', '.join(missing[:5])}")
            mode = f"recorded answers ({answers.name})"
            report = E.evaluate(cases, lambda c: E.answer_row(c, recorded[c.id]))
        elif settings.configured:
            mode = f"answers from {settings.model} at {settings.endpoint_label}"
            sink = record.open("w", encoding="utf-8") if record else None

            def answer(case: E.Case) -> E.Row:
                result = collect(asker.stream(case.question, stream=False))
                if sink is not None:
                    sink.write(E.record_line(case, result) + "\n")
                    sink.flush()
                return E.answer_row(case, result)

            try:
                report = E.evaluate(cases, answer, _progress(as_json, len(cases)))
            finally:
                if sink is not None:
                    sink.close()
        else:
            mode = "evidence only (no model endpoint configured)"

            def gather(case: E.Case) -> E.Row:
                results, chosen = asker.gather(case.question)
                return E.evidence_row(case, chosen, abstained=not chosen)

            report = E.evaluate(cases, gather, _progress(as_json, len(cases)))
    if as_json:
        out_console.print_json(json.dumps({"mode": mode, **report.to_dict()}))
        return
    table = Table(
        title=f"{questions.name}: {report.answerable} answerable, "
        f"{report.unanswerable} unanswerable — {mode}",
        header_style="bold",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in report.metrics.items():
        table.add_row(name, "—" if value is None else f"{value:.3f}")
    print_table(table)
    if record is not None and settings.configured and answers is None:
        err_console.print(f"recorded the answers in {record} (score again with --answers)")


def _progress(quiet: bool, total: int):  # noqa: ANN202
    if quiet:
        return None
    done = [0]

    def tick(_row: object) -> None:
        done[0] += 1
        if done[0] % 10 == 0 or done[0] == total:
            err_console.print(f"[dim]{done[0]}/{total} questions[/]", highlight=False)

    return tick
