"""CPU mode: run verl's real trainer loop on a GPU-less machine (a laptop, CPU CI).

verl 0.9.1 has no CPU path: its platforms are CUDA/NPU/ROCm and its rollouts are vLLM/SGLang/TRT-LLM. CPU
mode adds, through verl's own plugin mechanism (the ``verl.plugins`` entry point ``cures_cpu``):

* a CPU platform (``platform.py``): device ``cpu``, backend ``gloo``, Ray resource ``GPU`` (logical);
* a transformers rollout named ``hf`` (``hf_engine.py``, ``hf_rollout.py``);
* the workarounds of verl bugs met on CPU, all in ``workarounds.py``;
* the Hydra overrides CPU needs (``cpu_profile.yaml``) and the environment (``profile.py``);
* a pre-flight check of Ray resources, because a config Ray cannot place hangs forever (``resources.py``);
* a launcher, ``python -m cures_verl.cpu.launch <verl overrides>`` (``launch.py``).

Nothing happens unless ``CURES_CPU_MODE=1`` is set; see ``docs/cpu_mode.md``. This package module imports
nothing so the plugin stays cheap in every process.
"""
