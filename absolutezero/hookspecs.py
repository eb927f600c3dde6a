"""Hook specifications: every point where a plugin can observe or change a run.

Plugins are ordinary modules or objects whose functions are decorated with
:data:`hookimpl` (re-exported as ``absolutezero.hookimpl``) and named after a hook below.
All hooks are optional; a plugin implements only what it needs and may accept a subset
of the arguments (pluggy passes arguments by name). Hooks are called with keyword
arguments only.

Plugins are found through the entry-point group ``absolutezero`` (switch autoload off
with the environment variable ``ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD``) or named by
import path in the run config's ``plugins=`` list; see :mod:`absolutezero.plugins`.

Hooks that return a value are called on every plugin; pluggy collects the non-``None``
results into a list (the most recently registered plugin first). Use the helpers in
:mod:`absolutezero.plugins` (``filter_proposal``, ``filter_answer``, ``reward_bonus``,
``extra_metrics``, ``run_summary``) rather than interpreting
that list by hand.

The core names no plugin's files, metrics or messages. A plugin writes its own files
into the run folder it receives in ``absolutezero_run_start``, adds its numbers to each
step's record with ``absolutezero_extra_metrics`` and its lines to the run's final
message with ``absolutezero_run_summary``.
"""

from __future__ import annotations


import pluggy
from omegaconf import DictConfig

from absolutezero.protocol import Task
from absolutezero.review import Review, ReviewItem

PROJECT_NAME = "absolutezero"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def absolutezero_run_start(config: DictConfig, run_dir: str) -> None:
    """Called once when a run starts, after the config is resolved and saved.

    Args:
        config: the resolved run configuration (read-only by convention).
        run_dir: the run's output folder (it exists). A plugin keeps its own files here
            (e.g. the oversight plugin's ``oversight.jsonl``); the core never names them.

    Return value: ignored.
    """


@hookspec
def absolutezero_run_end(run_dir: str, status: str) -> None:
    """Called once when a run ends, whatever the outcome (also after an exception).

    Args:
        run_dir: the run's output folder.
        status: ``"completed"``, ``"interrupted"`` (e.g. Ctrl-C), ``"stopped"`` (a reviewing
            plugin's stop; see ``absolutezero_review_responses``) or ``"failed"``.

    Return value: ignored.
    """


@hookspec
def absolutezero_step_metrics(step: int, metrics: dict[str, float]) -> None:
    """Called after every training step with the metrics written to ``metrics.jsonl``.

    Args:
        step: the step just finished (1-based).
        metrics: flat name -> value mapping (per role x task type rewards, valid and
            solve rates, advantage stats, lengths, buffer sizes, timings). Do not mutate.

    Return value: ignored. Loggers (TensorBoard, W&B, ...) hook in here.
    """


@hookspec
def absolutezero_extra_metrics(step: int) -> dict[str, float] | None:
    """Called at the end of every step (and of seeding, ``step == 0``), after the core's
    metrics are computed and before the step's record is returned and written; only on
    the main process of a distributed run.

    Args:
        step: the step being finished.

    Returns:
        Metrics to add to the step's record (name -> number; prefix the names with the
        plugin's own namespace, e.g. ``myplugin/...``), or ``None`` for none. A name the
        core or another plugin already set is an error.
    """


@hookspec
def absolutezero_run_summary(run_dir: str, status: str) -> list[str] | None:
    """Called once when a run ends, on the main process, just before
    ``absolutezero_run_end`` (so the plugin still holds the run's state).

    Args:
        run_dir: the run's output folder.
        status: as in ``absolutezero_run_end``.

    Returns:
        Lines for the run's final message on stderr (e.g. where the plugin's files are
        and what to read before resuming), or ``None`` for none.
    """


@hookspec
def absolutezero_task_accepted(task: Task, step: int) -> None:
    """Called for every proposal that passed validation and plugin filters.

    Args:
        task: the validated task, just added to its buffer.
        step: the current step (0 while seeding before training).

    Return value: ignored.
    """


@hookspec
def absolutezero_task_rejected(task_type: str, response: str, reason: str, step: int) -> None:
    """Called for every proposal rejected by the environment or by a plugin filter.

    Args:
        task_type: the task type the proposer was asked for.
        response: the full proposer response (prefill + completion).
        reason: why it was rejected (the environment's or the filtering plugin's).
        step: the current step (0 while seeding before training).

    Return value: ignored.
    """


@hookspec
def absolutezero_checkpoint(path: str, step: int) -> None:
    """Called after a checkpoint has been written completely (atomically) to ``path``.

    Args:
        path: the checkpoint folder (``<run>/checkpoints/step_N``).
        step: the step it holds.

    Return value: ignored. Use it to upload or prune checkpoints.
    """


@hookspec
def absolutezero_filter_proposal(task: Task, response: str) -> str | None:
    """Called for every proposal the environment validated, before it is accepted.

    Args:
        task: the validated task.
        response: the full proposer response it came from.

    Returns:
        A reason to reject the proposal (it then counts as invalid: format penalty, not
        added to a buffer, ``absolutezero_task_rejected`` is called), or ``None`` to let
        it through. The first reason returned by any plugin wins.
    """


@hookspec
def absolutezero_filter_answer(task: Task, response: str) -> str | None:
    """Called for every solver answer before it is verified.

    Args:
        task: the task being solved.
        response: the full solver response.

    Returns:
        A reason to treat the answer as unparseable (it is scored as a format failure and
        never reaches the environment's verifier), or ``None`` to let it through.
    """


@hookspec
def absolutezero_reward_terms(
    role: str, task: Task | None, response: str, reward: float
) -> float | None:
    """Called for every sample after its base reward is computed, before TRR++.

    Args:
        role: ``"propose"`` or ``"solve"``.
        task: the task (the validated one for a proposal; ``None`` for an invalid one).
        response: the full model response.
        reward: the base reward from :mod:`absolutezero.rewards`.

    Returns:
        A term added to the reward (e.g. a length penalty), or ``None`` for no change.
        Terms from all plugins are summed.
    """


@hookspec
def absolutezero_review_responses(items: list[ReviewItem]) -> list[Review | None] | None:
    """Called once per phase with every model response of the phase (proposals, during
    seeding too; solver answers, learnability rollouts included), before rewards.

    Args:
        items: what to review; each has the step, role, task type, the full response
            (reasoning and answer) and whether the sample is trained on.

    Returns:
        One :class:`~absolutezero.review.Review` or ``None`` per item, in order (or
        ``None`` for the whole batch). A review's flags are counted into the metrics; its
        ``penalty`` is added to the reward, ``drop`` leaves the sample out of the update
        (and a dropped proposal out of the buffers), and ``stop`` ends the run cleanly
        after the step is checkpointed. See :mod:`absolutezero.review`.
    """
