"""The ``policy`` agent: a Hugging Face causal LM that proposes, solves and learns.

Entry point ``absolutezero.agents: policy = absolutezero_policy.agent:PolicyAgent``.
Modules: ``model_loading`` (embedded GGUF / folders / Hub names), ``hf_backend`` and
``vllm_backend`` (generation; ``vllm_engine``, ``vllm_weights``), ``learner`` (TRR++
policy-gradient step; ``token_logprobs``, ``sharding``, ``train_state``), ``agent``, and
``memory_plan`` (the memory planner; ``architectures``, ``memory_*``).
Nothing heavy is imported here, so listing agents stays cheap.
"""
