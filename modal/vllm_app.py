"""Serve an OpenAI-compatible vLLM server on Modal.com for noesis.

Deploy:
    pip install modal && modal setup
    NOESIS_MODEL=meta-llama/Llama-3.3-70B-Instruct NOESIS_GPU=H100:2 modal deploy modal/vllm_app.py

Then point noesis at it:
    LLM_PROVIDER=modal MODAL_BASE_URL=https://<workspace>--noesis-vllm-serve.modal.run/v1 \
    MODAL_MODEL=meta-llama/Llama-3.3-70B-Instruct noesis serve

With NOESIS_PROXY_AUTH=1 the endpoint requires Modal proxy auth: create a proxy
token in the Modal dashboard and give noesis MODAL_KEY / MODAL_SECRET, which it
sends as the Modal-Key / Modal-Secret headers. With a "noesis-vllm" secret
holding VLLM_API_KEY, vLLM also checks a bearer key (MODAL_API_KEY in noesis).

Settings (environment, read at deploy time):
    NOESIS_MODEL           model to serve (default Qwen/Qwen3-32B)
    NOESIS_GPU             Modal GPU spec (default H100; A100-40GB, A100-80GB, H100:2, ...)
    NOESIS_SCALEDOWN       idle seconds before the container scales to zero (default 300, the seed's 5 min)
    NOESIS_MAX_INPUTS      concurrent requests per container (default 64)
    NOESIS_PROXY_AUTH      1 to require Modal proxy auth
    NOESIS_LORA            name of a LoRA adapter in the noesis-lora volume to serve beside the model
"""

import os
import subprocess

import modal

MODEL = os.environ.get("NOESIS_MODEL", "Qwen/Qwen3-32B")
GPU = os.environ.get("NOESIS_GPU", "H100")
SCALEDOWN = int(os.environ.get("NOESIS_SCALEDOWN", "300"))
MAX_INPUTS = int(os.environ.get("NOESIS_MAX_INPUTS", "64"))
PROXY_AUTH = os.environ.get("NOESIS_PROXY_AUTH", "") == "1"
LORA = os.environ.get("NOESIS_LORA", "")
PORT = 8000
MINUTES = 60

image = (
    modal.Image.debian_slim(python_version="3.12")
    .pip_install("vllm==0.11.0", "huggingface_hub[hf_transfer]")
    .env({"HF_HUB_ENABLE_HF_TRANSFER": "1", "NOESIS_MODEL": MODEL, "NOESIS_LORA": LORA})
)

hf_cache = modal.Volume.from_name("noesis-hf-cache", create_if_missing=True)
vllm_cache = modal.Volume.from_name("noesis-vllm-cache", create_if_missing=True)
lora_volume = modal.Volume.from_name("noesis-lora", create_if_missing=True)

app = modal.App("noesis-vllm")


def gpu_count(spec: str) -> int:
    """The tensor-parallel size: the N of "H100:N", else 1."""
    _, _, n = spec.partition(":")
    return int(n) if n else 1


def vllm_command(model: str, port: int, tensor_parallel: int, lora: str, api_key: str) -> list:
    cmd = [
        "vllm", "serve", model,
        "--host", "0.0.0.0", "--port", str(port),
        "--tensor-parallel-size", str(tensor_parallel),
        "--served-model-name", model,
    ]
    if lora:
        cmd += ["--enable-lora", "--lora-modules", f"{lora}=/lora/{lora}"]
    if api_key:
        cmd += ["--api-key", api_key]
    return cmd


@app.function(
    image=image,
    gpu=GPU,
    scaledown_window=SCALEDOWN,
    timeout=24 * 60 * MINUTES,
    volumes={"/root/.cache/huggingface": hf_cache, "/root/.cache/vllm": vllm_cache, "/lora": lora_volume},
    secrets=[modal.Secret.from_name("noesis-vllm", required_keys=[])],
)
@modal.concurrent(max_inputs=MAX_INPUTS)
@modal.web_server(port=PORT, startup_timeout=20 * MINUTES, requires_proxy_auth=PROXY_AUTH)
def serve():
    cmd = vllm_command(os.environ["NOESIS_MODEL"], PORT, gpu_count(GPU), os.environ.get("NOESIS_LORA", ""),
                       os.environ.get("VLLM_API_KEY", ""))
    subprocess.Popen(cmd)
