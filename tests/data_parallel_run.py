"""One rank of a data-parallel `hf-rbridge` run on CPU processes, started by `torchrun`.

lm-eval enables data parallelism in `HFLM` only with several GPUs; on them it sets the rank and
world size from its `Accelerator`. Here the same branch runs on CPU processes joined over gloo:
the accelerator is created for the CPU, and the rank and world size are set as lm-eval sets them
(`HFLM.__init__`), so lm-eval's own evaluator, all-gathers and barriers run for real.

    torchrun --standalone --nproc_per_node 2 data_parallel_run.py MODEL TRACES DATA LIMIT OUT
"""

import json
import sys

from accelerate import Accelerator
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from rbridge_tasks import tasks_path
from rbridge_tasks.backends.hf import HFRBridgeLM

model_dir, traces, data_dir, limit, out = sys.argv[1:6]
Accelerator(cpu=True)  # the process group HFLM's own Accelerator() then joins
lm = HFRBridgeLM(pretrained=model_dir, device="cpu", batch_size="auto")
lm._rank, lm._world_size = lm.accelerator.process_index, lm.accelerator.num_processes
manager = TaskManager(
    include_path=str(tasks_path()),
    include_defaults=False,
    metadata={"traces": traces, "data_dir": data_dir, "pretrained": model_dir},
)
results = simple_evaluate(
    model=lm, tasks=["rbridge_gsm8k"], task_manager=manager, limit=int(limit), bootstrap_iters=0
)
if lm.rank == 0:
    samples = results["samples"]["rbridge_gsm8k"]
    with open(out, "w") as fh:
        json.dump({s["doc"]["id"]: s["rbridge_nll"] for s in samples}, fh)
