"""`polylens ask QUESTION`: an answer from the index's own evidence, every claim cited."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from polylens.cli._common import (
    IndexOption,
    StoreOption,
    cli_errors,
    default_index,
    err_console,
    located,
    out_console,
    setup_logging,
    shown_path,
)


class AskFormat(StrEnum):
    text = "text"
    trec = "trec"


def ask(
    question: Annotated[str, typer.Argument(help="The question.", metavar="QUESTION")],
    index_dir: IndexOption = None,  # type: ignore[assignment]
    store: StoreOption = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
            "(default: $POLYLENS_LLM_URL, then llm_url in polylens.toml). The API key is "
            "read from $POLYLENS_LLM_API_KEY or $OPENAI_API_KEY only.",
            metavar="URL",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model name to ask for (default: $POLYLENS_LLM_MODEL, then llm_model).",
            metavar="NAME",
        ),
    ] = None,
    max_evidence: Annotated[
        int | None,
        typer.Option(
            "--max-evidence",
            min=1,
            max=50,
            help="Most items sent as evidence (fewer when the scores say fewer are good).",
            metavar="N",
        ),
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(
            "--rounds",
            min=1,
            max=10,
            help="Searches the model may make in all (1: only the question's own).",
            metavar="N",
        ),
    ] = None,
    text_only: Annotated[
        bool, typer.Option("--text-only", help="Send the evidence's text, no pictures.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer, citations and references as JSON.")
    ] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer once it is complete.")
    ] = False,
    output_format: Annotated[
        AskFormat,
        typer.Option(
            "--format", help="trec: a TREC RAG (Ragnarok) answer record as JSON.", metavar="FORMAT"
        ),
    ] = AskFormat.text,
    run_id: Annotated[
        str, typer.Option("--run-id", help="run_id of --format trec.", metavar="ID")
    ] = "polylens",
    topic_id: Annotated[
        str | None,
        typer.Option(
            "--topic-id", help="topic_id of --format trec (default: a hash).", metavar="ID"
        ),
    ] = None,
) -> None:
    """Answer a question from the index, citing the pages, pictures and notes used."""
    machine = as_json or output_format is AskFormat.trec
    setup_logging(machine)
    with cli_errors():
        from polylens.engine import open_index

        with open_index(
            index_dir or default_index(), create=False, serve_from_memory=False, store=store
        ) as idx:
            events = idx.ask_stream(
                question,
                endpoint=endpoint,
                model=model,
                max_evidence=max_evidence,
                rounds=rounds,
                vision=False if text_only else None,
                stream=not no_stream and not machine,
            )
            answer = _run(events, live=not no_stream and not machine, quiet=machine)
    if output_format is AskFormat.trec:
        from polylens.ask.trec import trec_record

        out_console.print_json(json.dumps(trec_record(answer, run_id=run_id, topic_id=topic_id)))
    elif as_json:
        out_console.print_json(json.dumps(answer.to_dict()))
    else:
        _print_answer(answer, printed=not no_stream)


def _run(events: Any, *, live: bool, quiet: bool) -> Any:
    for event in events:
        if event.type == "evidence" and not event.data.get("no_good_match") and not quiet:
            _print_evidence(event.data["references"])
        elif event.type == "round" and not quiet:
            added = len(event.data["added"])
            err_console.print(
                f"[dim]searching again: {event.data['query']!r} ({added} new)[/]",
                highlight=False,
                soft_wrap=True,
            )
        elif event.type == "delta" and live:
            sys.stdout.write(event.data["text"])
            sys.stdout.flush()
        elif event.type == "done":
            return event.answer
    raise RuntimeError("the answer stream ended without a result")


def _print_evidence(references: list[dict[str, Any]]) -> None:
    pictures = sum(1 for r in references if r["sent_as"] == "image+text")
    err_console.print(
        f"[dim]evidence: {len(references)} item(s), {pictures} with a picture[/]",
        highlight=False,
    )


def _print_answer(answer: Any, *, printed: bool) -> None:
    if answer.abstain_reason == "no_good_match":
        out_console.print("[bold]No good match[/] — closest results:", highlight=False)
        for ref in answer.references:
            out_console.print(f"  {_where(ref)}", highlight=False, soft_wrap=True)
        if not answer.references:
            out_console.print("  (nothing in the index comes close)")
        out_console.print("[dim]No model was asked: nothing found answers this.[/]")
        return
    if printed:
        sys.stdout.write("\n")
    else:
        sys.stdout.write(answer.answer + "\n")
    sys.stdout.flush()
    cited = set(answer.cited)
    out_console.print("\n[bold]References[/]", highlight=False)
    for ref in answer.references:
        mark = "" if ref.n in cited else "  [dim](not cited)[/]"
        out_console.print(f"  [{ref.n}] {_where(ref)}{mark}", highlight=False, soft_wrap=True)
    uncited = sum(1 for s in answer.sentences if s.uncited)
    notes = []
    if answer.abstained:
        notes.append("the model says the evidence does not answer this")
    if uncited:
        notes.append(f"{uncited} sentence(s) cite no evidence")
    if answer.dropped_citations:
        notes.append(f"{answer.dropped_citations} citation(s) to evidence not given were dropped")
    if answer.fallbacks:
        notes.append("sent with less: " + ", ".join(answer.fallbacks))
    for note in notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


def _where(ref: Any) -> str:
    where = shown_path(ref.path) + located(ref)
    if getattr(ref, "chunk", None) is not None:  # two passages of one text file differ here
        where += f"  passage {ref.chunk + 1}"
    confidence = f", {round(100 * ref.confidence)}%" if ref.confidence is not None else ""
    return f"{where}  ({ref.kind}{confidence})"
