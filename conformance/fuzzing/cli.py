"""``ov-conformance fuzz``: run a campaign (or N in parallel), write findings, exit 1 on new ones."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

DEFAULT_TARGETS = ("CPU:f32",)
DEFAULT_REGISTRY = "expected_failures.yaml"
# --jobs auto: a job computes (draws, oracles, compares) while its OpenVINO worker waits, and the
# reverse, so one job per core leaves the cores idle between turns. Measured on 2 cores (AMD EPYC,
# 2,000 cases, 5 pairs): 4 jobs took 0.91x the wall of 2 for 1.03x the CPU (docs/performance.md).
AUTO_JOBS_PER_CORE = 2


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``fuzz`` subcommand to ``commands`` (an argparse subparsers object)."""
    from . import strategies   # the op list (imports neither torch nor OpenVINO)
    fuzz = commands.add_parser(
        "fuzz", help="explore the spec-valid space of both ops on targets; write minimal findings",
        description="Generate valid cases from a seed, run each on every target (isolated: crashes and hangs "
                    "are findings), dedup failures by signature (op, target, failure class, primitive, attribute "
                    "classes), match them against the registry's signatures, shrink each, and write one case file "
                    "per distinct finding. Exit 1 when a finding is not in the registry.")
    fuzz.add_argument("--seed", type=int, default=1)
    fuzz.add_argument("--time", type=float, default=None, metavar="SECONDS",
                      help="time budget (exploration + shrinking); stops the same sequence earlier or later")
    fuzz.add_argument("--max-cases", type=int, default=None, metavar="N")
    fuzz.add_argument("--target", action="append", dest="targets", metavar="DEVICE[:PRECISION][:ISA]",
                      help="repeatable; default CPU:f32")
    fuzz.add_argument("--op", action="append", dest="ops", metavar="OP", choices=tuple(strategies.GENERATORS),
                      help="repeatable; any op the harness knows (" + ", ".join(strategies.GENERATORS)
                           + "); default the grouped ones: " + ", ".join(strategies.DEFAULT_OPS))
    fuzz.add_argument("--jobs", type=jobs_count, default=1, metavar="N|auto",
                      help="N campaigns in parallel processes, seeds SEED*1000+i; findings merged; auto: two "
                           "per core (a job and its OpenVINO worker take turns, so one per core leaves "
                           "the cores idle between turns)")
    fuzz.add_argument("--out", default="findings", metavar="DIR")
    fuzz.add_argument("--expected-failures", default=DEFAULT_REGISTRY, metavar="PATH",
                      help=f"the registry findings are matched against (default {DEFAULT_REGISTRY}; without "
                           "it, when the default is absent, every finding counts as new)")
    fuzz.add_argument("--item-timeout", type=float, default=60.0, metavar="SECONDS")
    fuzz.add_argument("--batch-size", type=int, default=None, metavar="N",
                      help="cases drawn at a time and run per target as one model (batched compilation; "
                           "a case failing in a batch is re-run alone); 1: one model per case; default "
                           "campaign.DEFAULT_BATCH_SIZE (96)")
    fuzz.add_argument("--shrink-checks", type=int, default=60, metavar="N", help="runs per finding while shrinking")
    fuzz.add_argument("--shrink-known", action="store_true",
                      help="shrink findings the registry already knows too (default: only new ones; the "
                           "registry's case is a known finding's minimal repro)")
    fuzz.add_argument("--reshrink", metavar="SUMMARY.json", default=None,
                      help="no exploration: shrink the new findings of an earlier campaign's summary.json "
                           "(e.g. one whose budget ran out) and write them to --out")
    # A job of --jobs N: only summary.json (the parent merges the jobs' summaries and writes every finding
    # file once; each job writing its ~240 finding files too cost ~0.8 s at the end of each job).
    fuzz.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    fuzz.set_defaults(handler=cmd_fuzz)
    return fuzz


def jobs_count(text: str) -> int:
    """``--jobs``: a positive number, or ``auto``: two jobs per core (``AUTO_JOBS_PER_CORE``)."""
    if text.strip().lower() == "auto":
        return AUTO_JOBS_PER_CORE * (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                     else os.cpu_count() or 1)
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of jobs >= 1, or auto")
    return count


def registry_problem(args) -> str | None:
    """Why ``--expected-failures`` cannot be used, or None; an absent default registry is no problem
    (the campaign runs without one, saying so) and sets ``args.expected_failures`` to None."""
    from ..case import CaseError
    from ..expectations import load_registry
    path = args.expected_failures
    if path is None:
        return None
    if not Path(path).is_file():
        if path != DEFAULT_REGISTRY:
            return f"fuzz: --expected-failures {path}: no such file"
        print(f"[fuzz] no {DEFAULT_REGISTRY} in {Path.cwd()}: no registry, every finding counts as new "
              f"(--expected-failures PATH names one)", file=sys.stderr, flush=True)
        args.expected_failures = None
        return None
    try:
        load_registry(path)
    except CaseError as error:
        return f"fuzz: {error}"
    return None


def _settings(args, seed: int):
    from ..targets import parse_target
    from . import campaign
    ops = tuple(args.ops or campaign.strategies.DEFAULT_OPS)   # argparse checked the names (choices)
    targets = tuple(parse_target(text) for text in (args.targets or DEFAULT_TARGETS))
    return campaign.Settings(seed=seed, max_cases=args.max_cases, time_budget=args.time, ops=ops, targets=targets,
                             registry=args.expected_failures, shrink_checks=args.shrink_checks,
                             shrink_known=args.shrink_known,
                             timeout=args.item_timeout, progress=lambda line: print(line, flush=True),
                             batch_size=args.batch_size or campaign.DEFAULT_BATCH_SIZE)


def job_seeds(seed: int, jobs: int) -> list[int]:
    """The seeds of ``--jobs`` parallel campaigns: SEED*1000 + i (the same seed, the same jobs)."""
    return [seed * 1000 + index for index in range(jobs)]


def job_max_cases(max_cases: int | None, jobs: int) -> int | None:
    """Each job's share of ``--max-cases`` (rounded up)."""
    return None if max_cases is None else -(-max_cases // jobs)


def merge_job_outputs(job_dirs) -> tuple:
    """The merged ``CampaignResult`` of the jobs' ``summary.json`` files (``campaign.merge``: findings
    deduped by signature across jobs, hits added, the simplest parameters kept), and the job
    directories that wrote no summary (a job that died)."""
    from . import campaign
    summaries, missing = [], []
    for job_dir in job_dirs:
        summary = Path(job_dir) / "summary.json"
        if summary.exists():
            summaries.append(json.loads(summary.read_text(encoding="utf-8")))
        else:
            missing.append(job_dir)
    return campaign.merge(summaries), missing


def _job_command(args, index: int, out: Path) -> list[str]:
    """The command line of job ``index`` of ``--jobs N`` as its own process (what ``_fork_job`` runs)."""
    return [sys.executable, "-m", "conformance.cli"] + _job_arguments(args, index, out)


def _job_arguments(args, index: int, out: Path) -> list[str]:
    command = ["fuzz", "--seed", str(job_seeds(args.seed, args.jobs)[index]), "--out", str(out),
               *(["--expected-failures", args.expected_failures] if args.expected_failures else []),
               "--item-timeout", str(args.item_timeout), "--shrink-checks", str(args.shrink_checks), "--job"]
    if getattr(args, "shrink_known", False):
        command.append("--shrink-known")
    if args.time is not None:
        command += ["--time", str(args.time)]
    if args.batch_size is not None:
        command += ["--batch-size", str(args.batch_size)]
    if args.max_cases is not None:
        command += ["--max-cases", str(job_max_cases(args.max_cases, args.jobs))]
    for target in args.targets or DEFAULT_TARGETS:
        command += ["--target", target]
    for op in args.ops or ():
        command += ["--op", op]
    return command


# What every job imports, imported once by the parent before it forks them: torch alone is ~1.5 s of CPU
# a process. Fork-safe: the parent computes nothing with them, so no torch (OpenMP) thread pool, no
# OpenVINO Core and no worker exists in it yet (numpy's OpenBLAS pool is stopped by OpenBLAS's own fork
# handler); each job creates its own after the fork.
JOB_IMPORTS = ("torch", "conformance.api", "conformance.batch", "conformance.fuzzing.campaign")


class _ForkedJob:
    """A job forked by ``_fork_job``: ``poll`` as ``subprocess.Popen``'s."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _fork_job(arguments: list[str], log_path: Path, setup: Callable[[], None] | None = None) -> _ForkedJob:
    """Run ``ov-conformance <arguments>`` (a ``--job``) in a forked child, its output in ``log_path``
    (``setup``: run first in the child). The child ends with ``os._exit`` once its workers are stopped:
    the interpreter's teardown (torch, OpenVINO's telemetry; ~0.4-0.8 s) is not on the campaign's tail,
    and the parent's exit handlers do not run twice."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return _ForkedJob(pid)
    code = 1
    try:
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        if setup is not None:
            setup()
        # The job's arguments are a ``fuzz`` command line (``_job_arguments``): this module's parser reads them.
        parser = argparse.ArgumentParser(prog="ov-conformance")
        add_parser(parser.add_subparsers(dest="command", required=True))
        job = parser.parse_args(arguments)
        code = job.handler(job)
    except BaseException:  # noqa: BLE001 - the job's own failure, told in its log (the parent sees no summary)
        traceback.print_exc()
    finally:
        try:
            from .. import worker
            worker.shutdown()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _take_zygotes(zygotes: list[list], index: int) -> None:
    """In job ``index``: fork its workers from its own zygotes; let go of the other jobs'."""
    from .. import worker
    for job, job_zygotes in enumerate(zygotes):
        for zygote in job_zygotes:
            if job == index:
                worker.pool().adopt_zygote(zygote)
            else:
                zygote.hand_over()


def _wait_for_jobs(processes: list) -> dict[str, str]:
    """Wait for every job ((process, out dir) pairs); meanwhile, as each job but the last ends,
    make the texts of its finding files (``campaign.finding_texts``): the jobs rarely end together,
    and this runs while a core is free instead of after the last job (~0.3 ms a finding)."""
    from . import campaign
    running, texts = list(processes), {}
    while running:
        finished = [job for job in running if job[0].poll() is not None]
        if not finished:
            time.sleep(0.05)
            continue
        for job in finished:
            running.remove(job)
            summary = Path(job[1]) / "summary.json"
            if running and summary.exists():
                finished_job = campaign.merge([json.loads(summary.read_text(encoding="utf-8"))])
                texts.update(campaign.finding_texts(finished_job))
    return texts


def cmd_fuzz(args) -> int:
    """Run the campaign(s); print progress, the summary and the rate; 1 when there are new findings."""
    from .. import worker
    from . import campaign
    # A campaign replaces a crashed worker a few times per 1,000 cases (each crashing half of a bisected
    # batch): forked from a zygote, a replacement costs a fork instead of ~0.4 s of interpreter start-up.
    worker.fork_workers_from_zygotes()
    out = Path(args.out)
    problem = registry_problem(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        settings = _settings(args, args.seed)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if args.reshrink:
        return _reshrink(args, settings, out)
    if args.jobs > 1:
        started = time.monotonic()
        jobs_dir = out / "jobs"
        # The jobs' torch runs on one OpenMP thread (read when torch loads: before the import below).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        # Each job's workers' zygotes, one per environment of the targets, start now: they import
        # OpenVINO on the other core while this process imports torch, and are ready when the jobs start.
        environments = {tuple(sorted(target.environment().items())) for target in settings.targets}
        zygotes = [[worker.start_zygote(dict(environment)) for environment in sorted(environments)]
                   for _ in range(args.jobs)]
        import importlib
        for module in JOB_IMPORTS:
            importlib.import_module(module)
        processes = []
        for index in range(args.jobs):
            job_out = jobs_dir / f"job-{index}"
            job_out.mkdir(parents=True, exist_ok=True)
            print(f"[fuzz] job {index}: seed {job_seeds(args.seed, args.jobs)[index]}, log {job_out / 'log.txt'}",
                  flush=True)
            processes.append((_fork_job(_job_arguments(args, index, job_out), job_out / "log.txt",
                                        lambda index=index: _take_zygotes(zygotes, index)), job_out))
        for zygote in (zygote for job_zygotes in zygotes for zygote in job_zygotes):
            zygote.hand_over()   # each job holds its own zygotes' channels
        texts = _wait_for_jobs(processes)
        for zygote in (zygote for job_zygotes in zygotes for zygote in job_zygotes):
            zygote.wait()
        result, missing = merge_job_outputs([job_out for _, job_out in processes])
        for job_out in missing:
            print(f"[fuzz] {job_out}: no summary (the job died: see its log.txt)", file=sys.stderr)
        result.seed = args.seed
        result.seconds = time.monotonic() - started
    else:
        print(f"[fuzz] seed {args.seed}, targets {', '.join(target.id for target in settings.targets)}, "
              f"ops {', '.join(settings.ops)}, budget {args.time or '-'} s / {args.max_cases or '-'} cases", flush=True)
        result = campaign.run_campaign(settings)
        texts = None
    if getattr(args, "job", False):
        campaign.write_summary(result, out)
        print(f"{len(result.findings)} finding(s) ({len(result.new_findings())} new) in {out / 'summary.json'}")
        print(result.rate_line())
        return 1 if result.new_findings() else 0
    paths = campaign.write_findings(result, out, texts)
    for line in campaign.summary_lines(result):
        print(line)
    for finding in result.findings.values():
        status = f"known ({finding.known})" if finding.known else "NEW"
        print(f"  {status}: {out / (finding.slug() + '.yaml')}  [{finding.hits} hits] {campaign.family(finding)}")
    print(f"{len(paths)} finding file(s) in {out}; {len(result.new_findings())} new")
    print(result.rate_line())
    return 1 if result.new_findings() else 0


def _reshrink(args, settings, out: Path) -> int:
    """Shrink the new findings of an earlier campaign (``--reshrink``) on this machine; write them to ``out``."""
    from . import campaign
    earlier = campaign.merge([json.loads(Path(args.reshrink).read_text(encoding="utf-8"))])
    from ..targets import parse_target
    settings.targets = tuple(parse_target(text) for text in (args.targets or earlier.targets and
                                                                [t.replace("-", ":") for t in earlier.targets]))
    fuzzer = campaign.Campaign(settings)
    wanted = {target.id for target in settings.targets}
    new = {}
    for finding in earlier.findings.values():
        if finding.target not in wanted:
            continue
        # classes and registry as they are now (both may have changed since the campaign ran)
        finding.attributes = campaign.strategies.attribute_class(finding.op, finding.params)
        known = campaign.match_signature(fuzzer.entries, finding.signature(), earlier.openvino_version,
                                         fuzzer.features.get(finding.target))
        finding.known = known.source if known else None
        if finding.known is None:
            new[finding.key] = finding
    started = time.monotonic()
    for finding in new.values():
        before = dict(finding.params)
        fuzzer.shrink_finding(finding)
        print(f"[fuzz] shrunk {finding.slug()} in {finding.shrink_checks} checks"
              f"{'' if finding.params != before else ' (nothing smaller keeps the signature)'}", flush=True)
    earlier.findings = new
    earlier.seconds = time.monotonic() - started
    paths = campaign.write_findings(earlier, out)
    print(f"{len(paths)} finding file(s) in {out}")
    return 1 if new else 0
