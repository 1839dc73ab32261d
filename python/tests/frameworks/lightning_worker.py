"""The Lightning run of test_lightning_resume.py: Trainer(accelerator="cpu", devices=2,
strategy="ddp") (Lightning re-launches this script for rank 1), ModelCheckpoint every 5 steps with
save_last, checkpoints through cairn.torch.lightning. argv: OUT_DIR MODE, MODE one of
``first`` (fit to 20 steps; at step 10 rank 0 writes its weights to OUT_DIR/step10.pt, at step 12
it writes OUT_DIR/at12 and waits there to be SIGKILLed) or ``resume`` (fit(ckpt_path="last") to 15
steps with the asynchronous plugin; rank 0 writes the global step and weights it starts from to
OUT_DIR/resumed.pt)."""

import argparse
import os
import sys
import threading

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from cairn.torch.lightning import AsyncCairnCheckpointIO, CairnCheckpointIO


class Regressor(LightningModule):
    def __init__(self, hidden: int = 16, lr: float = 0.05, tag: argparse.Namespace = None) -> None:
        super().__init__()
        self.save_hyperparameters()  # a Namespace among them: stored as torch.save bytes, loaded weights_only
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5),
                                                   "interval": "step"}}


def weights(module: LightningModule):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Probe(Callback):
    def __init__(self, out: str, mode: str) -> None:
        self.out, self.mode = out, mode

    def on_train_start(self, trainer, module):
        if self.mode == "resume" and trainer.global_rank == 0:
            torch.save({"global_step": trainer.global_step, "weights": weights(module),
                        "lr": trainer.optimizers[0].param_groups[0]["lr"]}, os.path.join(self.out, "resumed.pt"))

    def on_train_batch_end(self, trainer, module, *args):
        if self.mode != "first" or trainer.global_rank != 0:
            return
        if trainer.global_step == 10:
            torch.save({"weights": weights(module), "lr": trainer.optimizers[0].param_groups[0]["lr"]},
                       os.path.join(self.out, "step10.pt"))
        if trainer.global_step == 12:
            with open(os.path.join(self.out, "at12"), "w") as f:
                f.write(str(os.getpid()))
            threading.Event().wait()  # the test SIGKILLs both ranks here


def main() -> None:
    out, mode = sys.argv[1], sys.argv[2]
    address, run_id = os.environ["CAIRN_COORDINATOR"], os.environ["CAIRN_RUN_ID"]
    with open(os.path.join(out, f"pid.{mode}.{os.environ.get('LOCAL_RANK', '0')}"), "w") as f:
        f.write(str(os.getpid()))
    torch.serialization.add_safe_globals([argparse.Namespace])  # what this run's hparams may hold
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(640, 8, generator=g)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True).sin()), batch_size=16, shuffle=False)
    plugin = (CairnCheckpointIO if mode == "first" else AsyncCairnCheckpointIO)(address, run_id, staging_mib=8)
    ckpt = ModelCheckpoint(dirpath=os.path.join(out, "ckpt"), every_n_train_steps=5, save_top_k=-1, save_last=True)
    trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=20 if mode == "first" else 15,
                      plugins=[plugin], callbacks=[ckpt, Probe(out, mode)], logger=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0)
    model = Regressor(tag=argparse.Namespace(run=run_id, note="hparams may hold arbitrary objects"))
    trainer.fit(model, data, ckpt_path="last" if mode == "resume" else None)


if __name__ == "__main__":
    main()
