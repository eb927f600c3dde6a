"""The proposal rounds that give a run its seed buffers and its probe set in one pass
(absolutezero.start_tasks), on the real ``arith`` environment with the scripted agent."""

from __future__ import annotations

from absolutezero.seeding import seed_and_probe
from test_selfplay_loop import make_trainer, without_timings


def test_one_pass_fills_the_buffers_and_sets_the_probe_set_aside():
    trainer = make_trainer(seed_size=5, seed_max_rounds=20, seed_batch=6)
    base = {t: len(trainer.env.seed_tasks(t)) for t in trainer.buffers.task_types}
    result, probe = seed_and_probe(trainer, probe_per_type=4, probe_rounds=20)
    rounds = int(result.metrics["seed/rounds"])
    # every round is one generate call of seed_batch prompts per lacking task type
    assert len(trainer.agent.generate_calls) == rounds
    assert all(call[0] % 6 == 0 and call[0] <= 6 * len(trainer.task_types) for call in trainer.agent.generate_calls)
    for task_type in trainer.task_types:
        assert len(probe[task_type]) == 4
        assert trainer.buffers.sizes()[task_type] - base[task_type] >= 5
        keys = [task.key() for task in probe[task_type]]
        assert len(set(keys)) == 4
        # held out: in no buffer, and excluded from every later add
        assert all(task not in trainer.buffers for task in probe[task_type])
        assert set(keys) <= trainer.held_out
    assert trainer.seeded and trainer.agent.updates == []


def test_the_split_alternates_so_early_rounds_feed_both():
    trainer = make_trainer(seed_size=8, seed_max_rounds=1, seed_batch=30)
    _, probe = seed_and_probe(trainer, probe_per_type=8, probe_rounds=1)
    for task_type in trainer.task_types:
        # one big round: both targets filled from the same proposals, neither starved
        assert len(probe[task_type]) == 8
        assert trainer.buffers.sizes()[task_type] >= 8


def test_a_probe_only_pass_stores_nothing_and_no_probe_means_seeding_as_before():
    seeded = make_trainer(seed_size=3, seed_max_rounds=10)
    plain = seeded.seed()
    again = make_trainer(seed_size=3, seed_max_rounds=10)
    result, probe = seed_and_probe(again, 0, 0)
    assert probe == {t: [] for t in again.task_types}
    assert without_timings(result.metrics) == without_timings(plain.metrics)
    assert again.buffers.to_jsonl() == seeded.buffers.to_jsonl()


def test_seeding_that_fails_leaves_the_trainer_as_it_was():
    trainer = make_trainer(seed_size=3, seed_max_rounds=10)
    trainer.agent.fail_on_generate = 2
    before = trainer.buffers.to_jsonl()
    try:
        seed_and_probe(trainer, 4, 10)
    except KeyboardInterrupt:
        pass
    else:  # pragma: no cover - the scripted agent raises on its 2nd call
        raise AssertionError("expected the interrupt")
    assert trainer.buffers.to_jsonl() == before and not trainer.seeded and trainer.held_out == set()


def test_training_does_not_depend_on_how_the_starting_tasks_were_found():
    proposed = make_trainer(seed_size=3, seed_max_rounds=10)
    proposed.seed()  # proposes, then restarts the training randomness
    from_file = make_trainer(seed_size=3, seed_max_rounds=10)
    from_file.agent.rng.random(1000)  # a different history of draws before training
    from absolutezero.buffers import BufferSet

    from_file.use_seed_buffers(BufferSet.from_jsonl(proposed.buffers.to_jsonl()))
    from_file.start_training()
    for _ in range(2):
        a, b = proposed.step(), from_file.step()
        assert without_timings(a.metrics) == without_timings(b.metrics)
    assert proposed.buffers.to_jsonl() == from_file.buffers.to_jsonl()
