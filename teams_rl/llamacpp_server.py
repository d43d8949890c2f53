"""llama-cpp-python's OpenAI-compatible server, safe on every x86-64 CPU::

    python -m teams_rl.llamacpp_server --model MODEL.gguf [the flags of python -m llama_cpp.server]

It takes the same flags as ``python -m llama_cpp.server``. Where the installed llama.cpp build has
AMX kernels, every model it loads uses plain CPU buffers (the server itself has no flag for it, and
its repacked AMX buffers segfault on the first request; :mod:`teams_env.llm.llamacpp_build`).
"""

from __future__ import annotations

import sys

from teams_env.llm.llamacpp_build import protect_default_model_params


def main() -> None:
    if protect_default_model_params():
        print(
            "teams_rl.llamacpp_server: this llama.cpp build has AMX kernels; "
            "loading models without extra buffers (they crash on AMX, llama.cpp issue 20824)",
            file=sys.stderr,
        )
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
