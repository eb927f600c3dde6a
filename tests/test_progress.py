"""progress=false silences the libraries' own bars (transformers' "Writing model shards")."""

import pytest

transformers_logging = pytest.importorskip("transformers.utils.logging")


def test_silence_library_bars_turns_off_transformers_and_hub_bars(monkeypatch):
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

    from absolutezero.progress import silence_library_bars

    transformers_logging.enable_progress_bar()
    enable_progress_bars()
    try:
        assert transformers_logging.is_progress_bar_enabled() and not are_progress_bars_disabled()
        silence_library_bars()
        assert not transformers_logging.is_progress_bar_enabled()
        assert are_progress_bars_disabled()
    finally:
        transformers_logging.enable_progress_bar()
        enable_progress_bars()


def test_a_run_with_progress_false_draws_no_bar(tmp_path, tiny_model_dir, capsys):
    from absolutezero.run import main

    try:
        code = main([f"out={tmp_path}", "name=quiet", "env=arith", f"agent_options.model={tiny_model_dir}", "steps=1",
                     "progress=false", "checkpoint_every=1", "agent_options.max_new_tokens=4",
                     "selfplay.propose_batch=1", "selfplay.solve_batch=1", "agent_options.autocast_bf16=false"])
    finally:
        transformers_logging.enable_progress_bar()
        from huggingface_hub.utils import enable_progress_bars

        enable_progress_bars()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (tmp_path / "quiet" / "checkpoints" / "step_1").is_dir()
    for bar in ("Writing model shards", "Loading weights", "it/s]"):
        assert bar not in captured.err, bar
