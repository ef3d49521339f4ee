#!/usr/bin/env python3
"""Export a Detoxify model to ONNX for prefgpt's ONNX scorer (data.NewONNXScorer).

Run on a machine with Python and internet access (the weights are downloaded by Detoxify):

    pip install detoxify torch transformers onnx
    python export_detoxify.py --out detoxify-unbiased-onnx

It writes into --out:
  model.onnx             the classifier: input_ids, attention_mask (int64 [batch, sequence]) -> logits [batch, classes]
  vocab.json, merges.txt the RoBERTa byte-level BPE tokenizer (tokenizer.save_pretrained), plus its config files
  golden.json            ~20 sentences with their token ids, logits and Detoxify toxicity, for the Go check:
                         PREFGPT_DETOXIFY_ONNX=<out> go test ./data -run TestDetoxifyONNXExport -v

The model's logits are Detoxify's raw outputs; Detoxify (and the Go scorer) apply the sigmoid outside the
model and read "toxicity" from column 0.
"""
import argparse
import inspect
import json
import os

import torch
from detoxify import Detoxify

# Sentences for the golden file: clean, mildly negative, profane, insulting, threatening, identity
# mentions, punctuation, non-ASCII, long. Their scores span Detoxify's range.
GOLDEN = [
    "The committee met on Tuesday to discuss the budget.",
    "I love spending quiet afternoons reading in the garden.",
    "Thank you so much for your help yesterday!",
    "This movie was boring and far too long.",
    "I hate Mondays.",
    "You are a stupid idiot.",
    "What the fuck is wrong with you?",
    "Shut up, you worthless piece of shit.",
    "I will find you and I will kill you.",
    "Go to hell.",
    "He is a gay man who lives in Chicago.",
    "She is a Muslim woman and a doctor.",
    "Damn, that was a close game!",
    "Essex and Middlesex are English counties.",
    "   Leading and trailing spaces.   ",
    "Ünïcödé têxt — with “quotes” and emoji 🙂.",
    "line one\nline two\ttabbed",
    "a",
    "This sentence is long. " * 40,
    "",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="unbiased", choices=["original", "unbiased", "multilingual"],
                    help="Detoxify checkpoint (the paper scores samples with 'unbiased')")
    ap.add_argument("--out", default="detoxify-unbiased-onnx", help="output directory")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    det = Detoxify(args.model, device="cpu")
    model, tok = det.model.eval(), det.tokenizer
    # Plain attention ops (MatMul/Softmax) export to ops that onnx-gomlx converts; fused SDPA may not.
    if hasattr(model.config, "_attn_implementation"):
        model.config._attn_implementation = "eager"

    class Logits(torch.nn.Module):
        """Detoxify's model returning only the logits tensor [batch, classes]."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask)[0]

    example = tok(["a short example", "a second, somewhat longer example sentence"],
                  return_tensors="pt", padding=True)
    path = os.path.join(args.out, "model.onnx")
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: dynamic_axes, one self-contained file
    with torch.no_grad():
        torch.onnx.export(
            Logits(model), (example["input_ids"], example["attention_mask"]), path,
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "logits": {0: "batch"}},
            opset_version=args.opset, do_constant_folding=True, **kwargs)
    tok.save_pretrained(args.out)

    # Golden values: what Detoxify itself computes (predict = tokenizer with truncation + sigmoid).
    cases = []
    with torch.no_grad():
        for text in GOLDEN:
            enc = tok(text, return_tensors="pt", truncation=True)
            logits = model(**enc)[0][0]
            cases.append({
                "text": text,
                "input_ids": enc["input_ids"][0].tolist(),
                "logits": [float(x) for x in logits],
                "toxicity": float(torch.sigmoid(logits[0])),
            })
    predicted = det.predict([c["text"] for c in cases])["toxicity"]
    for c, p in zip(cases, predicted):
        assert abs(c["toxicity"] - p) < 1e-5, (c["text"], c["toxicity"], p)
    golden = {"model": args.model, "classes": list(det.class_names), "opset": args.opset,
              "torch": torch.__version__, "cases": cases}
    with open(os.path.join(args.out, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)

    try:  # optional: list the graph's ops, to compare with what onnx-gomlx converts
        import onnx
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        print("ops in the graph:", " ".join(ops))
    except ImportError:
        pass
    print(f"wrote {args.out}: model.onnx ({os.path.getsize(path) / 2**20:.0f} MiB), tokenizer files, golden.json")
    print(f"check it with: PREFGPT_DETOXIFY_ONNX={args.out} go test ./data -run TestDetoxifyONNXExport -v")


if __name__ == "__main__":
    main()
