"""Fine-tune a LoRA adapter on Modal.com for noesis's judges or narrator.

The seed's priority 4: adapt a small open model to the tribunal's answer format
(or a domain) on Modal GPUs, then serve it beside the base model with
modal/vllm_app.py (NOESIS_LORA=<name>).

Data: a JSONL file of chat examples, {"messages": [{"role": ..., "content": ...}, ...]},
for example verdicts exported from noesis.verdicts.> with the judges' answers.

Run:
    modal volume put noesis-lora-data verdicts.jsonl /verdicts.jsonl
    NOESIS_BASE_MODEL=Qwen/Qwen3-8B NOESIS_LORA_NAME=tribunal-v1 modal run modal/finetune_lora.py

The adapter lands in the noesis-lora volume under /<NOESIS_LORA_NAME>.
"""

import json
import os

import modal

BASE_MODEL = os.environ.get("NOESIS_BASE_MODEL", "Qwen/Qwen3-8B")
LORA_NAME = os.environ.get("NOESIS_LORA_NAME", "tribunal-v1")
GPU = os.environ.get("NOESIS_GPU", "A100-80GB")
EPOCHS = int(os.environ.get("NOESIS_EPOCHS", "2"))
MINUTES = 60

image = (
    modal.Image.debian_slim(python_version="3.12")
    .pip_install("torch==2.8.0", "transformers==4.57.0", "peft==0.17.1", "datasets==4.1.1", "accelerate==1.10.1")
    .env({"NOESIS_BASE_MODEL": BASE_MODEL, "NOESIS_LORA_NAME": LORA_NAME})
)

data_volume = modal.Volume.from_name("noesis-lora-data", create_if_missing=True)
lora_volume = modal.Volume.from_name("noesis-lora", create_if_missing=True)
hf_cache = modal.Volume.from_name("noesis-hf-cache", create_if_missing=True)

app = modal.App("noesis-lora")


def load_examples(path: str) -> list:
    """Read chat examples, skipping lines that are not {"messages": [...]}."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            row = json.loads(line)
            if isinstance(row.get("messages"), list) and row["messages"]:
                examples.append(row)
    return examples


@app.function(
    image=image,
    gpu=GPU,
    timeout=6 * 60 * MINUTES,
    volumes={"/data": data_volume, "/lora": lora_volume, "/root/.cache/huggingface": hf_cache},
    secrets=[modal.Secret.from_name("huggingface", required_keys=[])],
)
def train(data_file: str = "/data/verdicts.jsonl", epochs: int = EPOCHS, rank: int = 16):
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainingArguments

    base = os.environ["NOESIS_BASE_MODEL"]
    name = os.environ["NOESIS_LORA_NAME"]
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.bfloat16, device_map="auto")
    model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))

    texts = [tokenizer.apply_chat_template(e["messages"], tokenize=False) for e in load_examples(data_file)]
    dataset = Dataset.from_dict({"text": texts}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=2048), batched=True, remove_columns=["text"])
    trainer = Trainer(
        model=model,
        args=TrainingArguments(output_dir="/tmp/out", num_train_epochs=epochs, per_device_train_batch_size=4,
                               gradient_accumulation_steps=4, learning_rate=2e-4, bf16=True, logging_steps=10, save_strategy="no"),
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )
    trainer.train()
    model.save_pretrained(f"/lora/{name}")
    tokenizer.save_pretrained(f"/lora/{name}")
    lora_volume.commit()
    return {"adapter": name, "examples": len(texts)}


@app.local_entrypoint()
def main(data_file: str = "/data/verdicts.jsonl"):
    print(train.remote(data_file))
